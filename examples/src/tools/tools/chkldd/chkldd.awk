# chkldd.awk: reads "FILE:" lines each followed by that file's ldd(1)
# output, and prints the files that need the library named by -v lib=NAME.
/:$/ && !/^[ \t]/ { file = substr($0, 1, length($0) - 1); next }
$1 == lib { users = users (users ? " " : "") file }
END { if (users) print users }
