/* The sample C library's interface. */
#ifndef _DFLY_H_
#define _DFLY_H_
const char *dfly_version(void);
int dfly_count_lines(const char *buf, long len);
#endif
