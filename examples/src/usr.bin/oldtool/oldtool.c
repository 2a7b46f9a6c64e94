/* oldtool: a program that revision 2 removes (listed in TO_REMOVE there). */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	printf("oldtool (%s)\n", dfly_version());
	return (0);
}
