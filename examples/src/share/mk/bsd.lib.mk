# bsd.lib.mk: lib${LIB}.so.${SHLIB_MAJOR} (with its soname) and lib${LIB}.a.
# The shared library goes to ${SHLIBDIR} with schg, as DragonFly installs
# libc; the archive, the unversioned link and the headers to /usr.
.include <bsd.own.mk>

SRCS?=		${LIB}.c
OBJS+=		${SRCS:N*.h:R:S/$/.o/}
SOBJS+=		${OBJS:.o=.So}
SHLIB_NAME?=	lib${LIB}.so.${SHLIB_MAJOR}
CFLAGS+=	-I${.CURDIR}

.SUFFIXES: .So
.c.So:
	${CC} ${CFLAGS} -fPIC -c ${.IMPSRC} -o ${.TARGET}

lib${LIB}.a: ${OBJS}
	rm -f ${.TARGET}
	${AR} rcD ${.TARGET} ${OBJS}

${SHLIB_NAME}: ${SOBJS}
	${CC} -shared -Wl,-soname,${SHLIB_NAME} -o ${.TARGET} ${SOBJS}

all: lib${LIB}.a ${SHLIB_NAME}

install: all maninstall
	@mkdir -p ${DESTDIR}${SHLIBDIR} ${DESTDIR}${LIBDIR} ${DESTDIR}${INCLUDEDIR}
	-${CHFLAGS} noschg ${DESTDIR}${SHLIBDIR}/${SHLIB_NAME} 2>/dev/null
	${INSTALL} -o ${BINOWN} -g ${BINGRP} -m ${LIBMODE} ${SHLIB_NAME} ${DESTDIR}${SHLIBDIR}/
	${CHFLAGS} schg ${DESTDIR}${SHLIBDIR}/${SHLIB_NAME}
	${INSTALL} -o ${BINOWN} -g ${BINGRP} -m ${LIBMODE} lib${LIB}.a ${DESTDIR}${LIBDIR}/
	${LN} -fs ../..${SHLIBDIR}/${SHLIB_NAME} ${DESTDIR}${LIBDIR}/lib${LIB}.so
.for _inc in ${INCS}
	${INSTALL} -o ${BINOWN} -g ${BINGRP} -m ${NOBINMODE} ${.CURDIR}/${_inc} ${DESTDIR}${INCLUDEDIR}/
.endfor

clean:
	rm -f lib${LIB}.a ${SHLIB_NAME} ${OBJS} ${SOBJS}

.include <bsd.man.mk>
.include <bsd.obj.mk>
