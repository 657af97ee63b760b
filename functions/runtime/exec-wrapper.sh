#!/bin/sh
# Lambda exec wrapper of the connector functions (AWS_LAMBDA_EXEC_WRAPPER, set by the stack).
#
# Lambda starts the runtime through this script with the interpreter path and all the original arguments of the
# standard runtime startup ("Modifying the runtime environment", wrapper scripts:
# https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper). It changes that command line in
# two ways and passes every other argument on unchanged, in order:
# - The Node.js runtime's own startup sizes the young generation from the function's memory on its command line
#   (--max-semi-space-size, about 1/20 of the memory), and Node lets a command-line flag win over the same flag in
#   NODE_OPTIONS. This script drops that one flag, so the value in the function's NODE_OPTIONS
#   (--max-semi-space-size=4, what `npm run bench` measures memory with) applies.
# - The V8 flags in CONNECTOR_NODE_ARGS (set by the stack; space-separated) go right after the interpreter: flags
#   that Node refuses in NODE_OPTIONS, such as --initial-old-space-size, can only be given there.
#
# POSIX sh on purpose (no bash features): the runtime image's /bin/sh is all it needs.
set -f # CONNECTOR_NODE_ARGS is split on spaces below, never expanded as a file pattern
interpreter=yes
skip_value=no
for arg do
  shift
  if [ "$interpreter" = yes ]; then
    interpreter=no
    # shellcheck disable=SC2086 # split on purpose: one argument per flag
    set -- "$@" "$arg" ${CONNECTOR_NODE_ARGS:-}
    continue
  fi
  if [ "$skip_value" = yes ]; then
    skip_value=no
    case "$arg" in
      *[!0-9]* | '') ;; # not a size: keep it (the flag had no separate value)
      *) continue ;;
    esac
  fi
  case "$arg" in
    --max-semi-space-size=* | --max_semi_space_size=*) continue ;;
    --max-semi-space-size | --max_semi_space_size)
      skip_value=yes
      continue
      ;;
  esac
  set -- "$@" "$arg"
done
exec "$@"
