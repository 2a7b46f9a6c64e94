/*
 * The sample's stand-in for libc: enough for the programs to need it at run
 * time, so that an extracted world only works when its library is there.
 */
#include "dfly.h"

#define DFLY_VERSION "DragonFly sample libc 9.0"

const char *
dfly_version(void)
{
	return (DFLY_VERSION);
}

int
dfly_count_lines(const char *buf, long len)
{
	int n = 0;

	while (len-- > 0)
		if (*buf++ == '\n')
			n++;
	return (n);
}
