# bsd.obj.mk: `make obj' makes ${MAKEOBJDIRPREFIX}${.CURDIR}; the next make
# started in ${.CURDIR} works there (bmake chdirs to it by itself).
.if !target(obj)
obj:
.if defined(MAKEOBJDIRPREFIX)
	@mkdir -p ${MAKEOBJDIRPREFIX}${.CURDIR}
.endif
.endif
