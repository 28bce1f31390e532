#!/usr/bin/env bash
# `pip check` of the environment, leaving out the packages of requirements/no-deps.txt: they are
# installed without their dependencies on purpose (data and weights only, never imported).
set -uo pipefail
pip=${1:?usage: pip-check.sh PATH_TO_PIP}
ignored=$(grep -v -E '^\s*(#|$)' requirements/no-deps.txt | sed -e 's/[=<>!~ ].*//' | paste -sd'|')
problems=$("$pip" check 2>&1 | grep -v -i -E "^(${ignored}) " | grep -v '^No broken requirements')
if [ -n "$problems" ]; then
  echo "$problems" >&2
  exit 1
fi
