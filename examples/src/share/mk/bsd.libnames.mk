# bsd.libnames.mk: the libraries a program may name in DPADD/LDADD.
# libc is linked by its path in the temporary world, not with -lc, so that
# on a non-DragonFly build host the host's own C library is still linked too.
LIBC_SHARED?=	${_SHLIBDIRPREFIX}/usr/lib/libc.so
