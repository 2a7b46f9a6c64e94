# bsd.prog.mk: one program PROG from SRCS, installed to ${BINDIR}.
.include <bsd.own.mk>
.include <bsd.libnames.mk>

.if defined(PROG)
SRCS?=		${PROG}.c
OBJS+=		${SRCS:N*.h:R:S/$/.o/}
.if !empty(_SHLIBDIRPREFIX)
CFLAGS+=	-I${_SHLIBDIRPREFIX}/usr/include
.endif
MAN?=		${PROG}.1

${PROG}: ${OBJS} ${DPADD}
	${CC} ${LDFLAGS} -o ${.TARGET} ${OBJS} ${LDADD}

all: ${PROG}

install: all maninstall
	@mkdir -p ${DESTDIR}${BINDIR}
	${INSTALL} -o ${BINOWN} -g ${BINGRP} -m ${BINMODE} ${PROG} ${DESTDIR}${BINDIR}/${PROG}
.if defined(PROG_FLAGS)
	${CHFLAGS} ${PROG_FLAGS} ${DESTDIR}${BINDIR}/${PROG}
.endif
.for _src _dst in ${LINKS}
	${LN} -f ${DESTDIR}${_src} ${DESTDIR}${_dst}
.endfor

clean:
	rm -f ${PROG} ${OBJS} ${CLEANFILES}
.else
all:
install: maninstall
clean:
.endif

.include <bsd.man.mk>
.include <bsd.obj.mk>
