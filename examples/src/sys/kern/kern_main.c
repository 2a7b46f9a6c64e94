/*
 * The sample "kernel": a real program that says which config built it and
 * which options it has. KERN_IDENT and KERN_OPTIONS come from the config.
 */
#include <stdio.h>
#include "../sys/param.h"

static const char version[] =
    "DragonFly " SAMPLE_KERNEL_RELEASE " (" KERN_IDENT ") options:" KERN_OPTIONS;

int
main(void)
{
	printf("%s\n", version);
	return (__DragonFly_version > 0 ? 0 : 1);
}
