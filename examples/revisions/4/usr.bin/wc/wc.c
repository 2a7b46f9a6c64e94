/*
 * wc: counts the lines, the bytes (since revision 3) and the words (since
 * revision 4) of stdin. Revision 4 changes only the world: the kernels and
 * the initrd (rescue has no wc) are built the same, so a release of it
 * publishes no new kernel dist.
 */
#include <ctype.h>
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	char buf[4096];
	size_t n, i;
	long lines = 0, words = 0, bytes = 0;
	int inword = 0;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		lines += dfly_count_lines(buf, (long)n);
		bytes += (long)n;
		for (i = 0; i < n; i++) {
			if (isspace((unsigned char)buf[i]))
				inword = 0;
			else if (!inword) {
				inword = 1;
				words++;
			}
		}
	}
	printf("%8ld %8ld %8ld\n", lines, words, bytes);
	return (0);
}
