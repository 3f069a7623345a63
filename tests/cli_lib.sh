# SPDX-License-Identifier: MIT
# cli_lib.sh — what every tests/cli_*.sh starts with, sourced with its arguments SNSTORE
# DIR: SN (the binary), DIR (a scratch directory under DIR named after the script,
# removed when it exits) and fail MESSAGE (print it and exit 1).
SN=$1
DIR=$2/$(basename "$0" .sh).$$
mkdir -p "$DIR"
trap 'rm -rf "$DIR"' EXIT
fail() {
	echo "FAIL: $*"
	exit 1
}
