/* wc: counts the lines of stdin, through the sample libc. */
#include <stdio.h>
#include <dfly.h>

int
main(void)
{
	char buf[4096];
	size_t n;
	long lines = 0;

	while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
		lines += dfly_count_lines(buf, (long)n);
	printf("%8ld\n", lines);
	return (0);
}
