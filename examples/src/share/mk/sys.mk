# sys.mk: system defaults, read first by every make run with -m share/mk.
# The sample tree's few pieces of DragonFly's share/mk.

unix?=		We run DragonFly (sample).

# Debian's bmake says amd64 where DragonFly says x86_64.
.if ${MACHINE_ARCH} == "amd64"
MACHINE_ARCH=	x86_64
.endif

.SUFFIXES:	.o .c .h .1 .8
CC?=		cc
CFLAGS?=	-O2 -pipe
AR?=		ar
LN?=		ln
INSTALL?=	install
ECHO?=		echo
GZIP_CMD?=	gzip -9n

.c.o:
	${CC} ${CFLAGS} -c ${.IMPSRC} -o ${.TARGET}
