# bsd.subdir.mk: run the same target in each of ${SUBDIR}.
.include <bsd.own.mk>
.for _tgt in all install obj clean
${_tgt}:
.for _dir in ${SUBDIR}
	@${ECHO} "===> ${DIRPRFX}${_dir} (${_tgt})"
	@cd ${.CURDIR}/${_dir}; ${MAKE} DIRPRFX=${DIRPRFX}${_dir}/ ${_tgt}
.endfor
.endfor
