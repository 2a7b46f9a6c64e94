/* newtool: a program that revision 2 adds. */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	printf("newtool (%s)\n", dfly_version());
	return (0);
}
