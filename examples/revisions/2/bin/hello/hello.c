/* hello: says hello and which C library it runs on. */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	printf("hello from revision 2 (%s)\n", dfly_version());
	return (0);
}
