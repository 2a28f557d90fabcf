#!/usr/bin/env bash
# Every relative link in README.md and docs/*.md names a file this repository
# has: a clone must not point at a file it lacks (issue "Operating statekv
# without surprises", item 13). Usage: doc_links.sh REPO_ROOT
set -u
root="$1"
bad=0
for doc in "$root/README.md" "$root"/docs/*.md; do
  dir="$(dirname "$doc")"
  # [text](target) links, minus URLs and in-page anchors.
  while IFS= read -r target; do
    target="${target%%#*}"
    [ -z "$target" ] && continue
    case "$target" in http://*|https://*|mailto:*) continue ;; esac
    if [ ! -e "$dir/$target" ]; then
      echo "${doc#$root/}: link to '$target', which this repository does not have"
      bad=1
    fi
  done < <(grep -o '\]([^)]*)' "$doc" | sed 's/^](\(.*\))$/\1/')
  # A path outside the repository is a dead link in a clone too.
  if grep -n '\](\.\./' "$doc" >/dev/null && [ "$dir" = "$root" ]; then
    echo "${doc#$root/}: links outside the repository"; bad=1
  fi
done
[ "$bad" -eq 0 ] && echo "every relative link resolves"
exit "$bad"
