# The layering rules, checked over the include graph (cmake -P, no other tool):
#   cmake -DSOURCE_DIR=<checkout> -P cmake/CheckLayers.cmake
# Every file under include/otsync/<layer>/ and src/<layer>/ belongs to <layer>;
# it may include only the layers listed for it below (quoted includes, resolved
# as the compiler would: include/ first, then relative to the including file),
# and none of the external headers listed as forbidden for it. Fails listing
# every violation. docs/architecture.md explains the layers.

cmake_minimum_required(VERSION 3.25)

if(NOT SOURCE_DIR)
  message(FATAL_ERROR "CheckLayers: pass -DSOURCE_DIR=<checkout>")
endif()

# Lowest first; a layer may include itself and what is listed.
set(layers ot oplog protocol auth trace redis store pubsub backend client doc server load otsyncd otsync-ot)
set(may_include_ot ot)
set(may_include_oplog ot oplog)
set(may_include_protocol ot oplog protocol)
set(may_include_trace ot trace)
# Identities and tokens: pure values and cryptography, below everything that serves.
set(may_include_auth ot oplog protocol auth)
# The private Redis plumbing (connection, script cache, codecs) under the Redis store and feed.
set(may_include_redis ot oplog protocol redis)
set(may_include_store ot oplog protocol store redis)
set(may_include_pubsub ot oplog protocol store pubsub redis)
# A --store URI opened as one {store, op feed} pair; the server sees only the interfaces.
set(may_include_backend ot oplog protocol store pubsub backend)
set(may_include_client ot oplog protocol client)
set(may_include_doc ot oplog protocol store pubsub doc)
set(may_include_server ot oplog protocol auth store pubsub backend doc server)
set(may_include_load ot oplog protocol client trace load)
set(may_include_otsyncd ot oplog protocol auth store pubsub backend doc server otsyncd)
set(may_include_otsync-ot ot oplog protocol trace otsync-ot)

# External headers a layer must not see (regexes over the include's name).
set(pure "^(boost|nlohmann|spdlog|prometheus|CLI|sqlite3|hiredis|zlib|liburing|simdjson)")
set(forbidden_ot "${pure}")
set(forbidden_oplog "${pure}")
set(forbidden_protocol "^(boost|spdlog|prometheus|CLI|sqlite3|hiredis)")
set(no_server_libs "^(boost/beast|spdlog|prometheus|CLI)")
set(forbidden_trace "${no_server_libs}")
set(forbidden_auth "^(boost|spdlog|prometheus|CLI|sqlite3|hiredis)")
set(forbidden_redis "${no_server_libs}")
set(forbidden_store "${no_server_libs}")
set(forbidden_pubsub "${no_server_libs}")
set(forbidden_backend "${no_server_libs}")
set(forbidden_doc "${no_server_libs}")
# Beast lives in the client's transport alone (compiled once in otsync::asio).
set(forbidden_client "^(spdlog|prometheus|CLI|sqlite3|hiredis)")
set(forbidden_load "^(spdlog|prometheus|sqlite3|hiredis)")
# Public headers keep Asio and Beast out of their includers, except the actor
# layers whose interfaces are executors and strands (doc, server).
set(public_forbidden "^boost/(asio|beast)")
set(public_asio_allowed doc server)
# Files allowed to include Beast outside the server layer.
set(beast_exceptions src/client/websocket_transport.cpp src/load/session.cpp)

function(layer_of path out)
  set(${out} "" PARENT_SCOPE)
  if(path MATCHES "^include/otsync/([^/]+)/")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  elseif(path MATCHES "^src/([^/]+)/")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  endif()
endfunction()

file(GLOB_RECURSE files RELATIVE "${SOURCE_DIR}" "${SOURCE_DIR}/include/otsync/*.hpp" "${SOURCE_DIR}/src/*.hpp"
     "${SOURCE_DIR}/src/*.cpp")
set(violations "")
set(checked 0)
foreach(file IN LISTS files)
  layer_of("${file}" layer)
  if(NOT layer)
    continue()
  endif()
  if(NOT layer IN_LIST layers)
    list(APPEND violations "${file}: folder '${layer}' is not a known layer (add it to cmake/CheckLayers.cmake)")
    continue()
  endif()
  math(EXPR checked "${checked} + 1")
  get_filename_component(dir "${file}" DIRECTORY)
  file(STRINGS "${SOURCE_DIR}/${file}" lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  foreach(line IN LISTS lines)
    if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(name "${CMAKE_MATCH_1}")
      if(EXISTS "${SOURCE_DIR}/include/${name}")
        set(target "include/${name}")
      else()
        get_filename_component(target "${SOURCE_DIR}/${dir}/${name}" ABSOLUTE)
        file(RELATIVE_PATH target "${SOURCE_DIR}" "${target}")
      endif()
      layer_of("${target}" to)
      if(to AND NOT to IN_LIST may_include_${layer})
        string(REPLACE ";" ", " allowed "${may_include_${layer}}")
        list(APPEND violations "${file}: layer '${layer}' includes '${name}' (layer '${to}'), and it may include only: ${allowed}")
      endif()
    elseif(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
      set(name "${CMAKE_MATCH_1}")
      if(DEFINED forbidden_${layer} AND name MATCHES "${forbidden_${layer}}" AND NOT file IN_LIST beast_exceptions)
        list(APPEND violations "${file}: layer '${layer}' includes <${name}>, which it must not depend on")
      endif()
      if(file MATCHES "^include/" AND name MATCHES "${public_forbidden}" AND NOT layer IN_LIST public_asio_allowed)
        list(APPEND violations "${file}: public header includes <${name}>: keep Asio/Beast out of public headers")
      endif()
    endif()
  endforeach()
endforeach()

list(LENGTH violations count)
if(count GREATER 0)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "Layering: ${count} violation(s) in ${checked} files:\n  ${text}")
endif()
message(STATUS "Layering: ${checked} files follow the rules")
