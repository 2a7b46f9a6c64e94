/* The sample kernel's version, as DragonFly's sys/sys/param.h carries it. */
#define __DragonFly_version	600501
#define SAMPLE_KERNEL_RELEASE	"6.5-SAMPLE rev 1"
