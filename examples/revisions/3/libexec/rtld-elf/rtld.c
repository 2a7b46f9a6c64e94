/* Stand-in for ld-elf.so.2: run directly, rtld says what it is. */
#include <stdio.h>

int
main(void)
{
	printf("ld-elf.so.2: sample runtime linker, revision 3\n");
	return (0);
}
