# Sourced by the shims: appends "NAME ARGS..." to $SHIM_LOG (when set).
shim_log() {
	[ -n "${SHIM_LOG:-}" ] || return 0
	printf '%s' "${0##*/}" >> "$SHIM_LOG"
	for a; do printf ' %s' "$a" >> "$SHIM_LOG"; done
	printf '\n' >> "$SHIM_LOG"
}
shim_log "$@"
