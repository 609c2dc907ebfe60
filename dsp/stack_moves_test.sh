#!/bin/sh
# stack_moves_test.sh OBJDUMP OBJECT... — fails when a kernel moves a 32- or 64-byte vector to or
# from the stack with an aligned instruction (GCC bug 54412). Windows guarantees the stack only
# 16-byte alignment and GCC does not realign it there: such a move faults on about half the calls.
# GCC 12 spills ymm/zmm registers with unaligned moves on mingw; this keeps it that way.
set -eu
objdump=$1
shift
bad=0
for o in "$@"; do
  dis=$("$objdump" -d "$o")
  aligned=$(printf '%s\n' "$dis" | grep -E 'vmova(ps|pd)|vmovdqa(32|64)?' | grep -E '%[yz]mm' |
    grep -cE '\(%r[sb]p\)|%r[sb]p,' || true)
  spills=$(printf '%s\n' "$dis" | grep -E '%[yz]mm' | grep -cE '\(%r[sb]p\)|%r[sb]p,' || true)
  echo "$(basename "$(dirname "$o")")/$(basename "$o"): $spills ymm/zmm moves to or from the stack, $aligned of them aligned"
  if [ "$aligned" -ne 0 ]; then
    printf '%s\n' "$dis" | grep -E 'vmova(ps|pd)|vmovdqa' | grep -E '%[yz]mm' |
      grep -E '\(%r[sb]p\)|%r[sb]p,' | head -5
    bad=1
  fi
done
exit $bad
