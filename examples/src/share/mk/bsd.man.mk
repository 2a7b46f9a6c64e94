# bsd.man.mk: manual pages, gzipped (without a name or time stamp inside,
# so that a rebuild gives the same bytes) into ${MANDIR}N.
.if defined(MAN) && !empty(MAN) && !defined(NOMAN)
_MANPAGES=
.for _page in ${MAN}
_MANPAGES+=	${_page}.gz
${_page}.gz: ${_page}
	${GZIP_CMD} -c ${.ALLSRC} > ${.TARGET}
.endfor
all: ${_MANPAGES}
maninstall: ${_MANPAGES}
.for _page in ${MAN}
	@mkdir -p ${DESTDIR}${MANDIR}${_page:E}
	${INSTALL} -o ${BINOWN} -g ${BINGRP} -m ${MANMODE} ${_page}.gz ${DESTDIR}${MANDIR}${_page:E}/
.endfor
.else
maninstall:
.endif
