# Writes OUT: the git commit this build comes from, for `lowphp-fpm -v`.
# Run at every build (not only at configure time), so a binary built after a
# new commit names that commit. Outside a git checkout the commit comes from
# SOURCE_DIR/.lowphp-commit (packaging/build-deb.sh writes it into the copy of
# the tree it builds from); without either, the build says it was made outside
# git. The file is rewritten only when its text changes: no needless relinks.
set(commit "")
execute_process(COMMAND git -C "${SOURCE_DIR}" rev-parse --short=12 HEAD
                OUTPUT_VARIABLE commit OUTPUT_STRIP_TRAILING_WHITESPACE
                RESULT_VARIABLE git_status ERROR_QUIET)
if(git_status EQUAL 0 AND commit)
  execute_process(COMMAND git -C "${SOURCE_DIR}" status --porcelain --untracked-files=no
                  OUTPUT_VARIABLE changes ERROR_QUIET)
  if(changes)
    string(APPEND commit " with uncommitted changes")
  endif()
elseif(EXISTS "${SOURCE_DIR}/.lowphp-commit")
  file(STRINGS "${SOURCE_DIR}/.lowphp-commit" commit LIMIT_COUNT 1)
else()
  set(commit "")
endif()
if(commit)
  set(text "#define LOWPHP_BUILD_COMMIT \"git commit ${commit}\"\n")
else()
  set(text "#define LOWPHP_BUILD_COMMIT \"built outside git\"\n")
endif()
set(old "")
if(EXISTS "${OUT}")
  file(READ "${OUT}" old)
endif()
if(NOT old STREQUAL text)
  file(WRITE "${OUT}" "${text}")
endif()
