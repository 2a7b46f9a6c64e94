#!/bin/sh
# pw-update.sh NEWGROUP DESTGROUP: adds to DESTGROUP the groups of NEWGROUP
# that it lacks, leaving the admin's own lines alone.
new=$1 dest=$2
[ -f "$dest" ] || { mkdir -p "$(dirname "$dest")"; : > "$dest"; }
while IFS= read -r line; do
	name=${line%%:*}
	grep -q "^$name:" "$dest" || echo "$line" >> "$dest"
done < "$new"
