# Copies the editor page's built files (clients/editor/dist) next to otsyncd
# (DST, e.g. build/bin/editor), where otsyncd looks for them by default.
#   cmake -DSRC=clients/editor/dist -DDST=build/bin/editor -P cmake/CopyEditor.cmake
# Without a build in SRC it says so and leaves DST alone (otsyncd then answers
# / with 503 and says how to build it).
if(NOT EXISTS "${SRC}/index.html")
  message(STATUS "editor page not built (${SRC}/index.html missing): run scripts/run.sh, or "
    "'npm ci && npm run build' in clients/editor")
  return()
endif()
file(GLOB files RELATIVE "${SRC}" "${SRC}/*")
set(changed FALSE)
foreach(f IN LISTS files)
  if(NOT EXISTS "${DST}/${f}")
    set(changed TRUE)
  else()
    file(SHA256 "${SRC}/${f}" a)
    file(SHA256 "${DST}/${f}" b)
    if(NOT a STREQUAL b)
      set(changed TRUE)
    endif()
  endif()
endforeach()
file(GLOB old RELATIVE "${DST}" "${DST}/*")
list(LENGTH files n_new)
list(LENGTH old n_old)
if(NOT n_new EQUAL n_old)
  set(changed TRUE)
endif()
if(changed)
  file(REMOVE_RECURSE "${DST}")
  file(COPY "${SRC}/" DESTINATION "${DST}")
  message(STATUS "editor page copied to ${DST}")
endif()
