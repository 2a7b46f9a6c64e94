/* cat: copies files (or stdin) to stdout. */
#include <stdio.h>
#include <dfly.h>

static int
copy(FILE *in)
{
	char buf[4096];
	size_t n;

	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, stdout) != n)
			return (1);
	return (ferror(in) ? 1 : 0);
}

int
main(int argc, char **argv)
{
	int i, rv = 0;
	FILE *f;

	if (argc > 1 && argv[1][0] == '-' && argv[1][1] == 'V') {
		printf("cat (%s)\n", dfly_version());
		return (0);
	}
	if (argc < 2)
		return (copy(stdin));
	for (i = 1; i < argc; i++) {
		if ((f = fopen(argv[i], "r")) == NULL) {
			perror(argv[i]);
			rv = 1;
			continue;
		}
		rv |= copy(f);
		fclose(f);
	}
	return (rv);
}
