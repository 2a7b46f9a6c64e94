/* rescue: a crunched multi-call binary; what it does depends on its name. */
#include <stdio.h>
#include <string.h>
#include <dfly.h>

int
main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/');
	char buf[4096];
	size_t n;

	name = name ? name + 1 : argv[0];
	(void)argc;
	if (strcmp(name, "cat") == 0) {
		while ((n = fread(buf, 1, sizeof(buf), stdin)) > 0)
			fwrite(buf, 1, n, stdout);
		return (0);
	}
	printf("rescue %s (%s, static)\n", name, dfly_version());
	return (0);
}
