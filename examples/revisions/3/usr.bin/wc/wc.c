/* wc: counts the lines (and, since revision 3, the bytes) of stdin. */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	char buf[4096];
	size_t n;
	long lines = 0, bytes = 0;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0) {
		lines += dfly_count_lines(buf, (long)n);
		bytes += (long)n;
	}
	printf("%8ld %8ld\n", lines, bytes);
	return (0);
}
