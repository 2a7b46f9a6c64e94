/* sysinfo: a system program that revision 3 adds under /sbin. */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	printf("sysinfo: %s\n", dfly_version());
	return (0);
}
