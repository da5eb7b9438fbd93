# `cmake --install`: the programs (otsyncd, otsync-load, otsync-ot), and the
# native client library for other programs: its public headers, its static
# archives and a package configuration, so that
#   find_package(otsync CONFIG REQUIRED)
#   target_link_libraries(app PRIVATE otsync::client)
# works against the install prefix (tested by tests/install/consumer).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(OTSYNC_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/otsync" CACHE STRING
  "Where otsyncConfig.cmake is installed, relative to the prefix")

install(TARGETS otsyncd otsync-load otsync-ot RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}")
# The editor page's built files (clients/editor/dist, when built), where otsyncd looks by default:
# BINDIR/../share/otsync/editor.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/clients/editor/dist/" DESTINATION "${CMAKE_INSTALL_DATADIR}/otsync/editor"
  OPTIONAL)

# The client, the libraries its public interface names (ot, oplog) and the
# archives it is linked from (protocol, asio): static libraries, so a consumer
# links all of them. Exported as otsync::<name> (EXPORT_NAME, set by otsync_library).
install(TARGETS otsync_client otsync_ot otsync_oplog otsync_protocol otsync_asio
  EXPORT otsyncTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}")
# (Their include directory is the prefix's include/: otsync_library's INSTALL_INTERFACE.)
# The headers of the client's public interface: they include only ot/ and oplog/.
install(DIRECTORY include/otsync/client include/otsync/ot include/otsync/oplog
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/otsync" FILES_MATCHING PATTERN "*.hpp")
install(EXPORT otsyncTargets NAMESPACE otsync:: DESTINATION "${OTSYNC_INSTALL_CMAKEDIR}")

set(OTSYNC_BOOST_MIN_VERSION 1.81)
set(OTSYNC_OPENSSL_MIN_VERSION 3)
set(OTSYNC_NLOHMANN_JSON_MIN_VERSION 3.11)
configure_package_config_file(cmake/otsyncConfig.cmake.in "${PROJECT_BINARY_DIR}/otsyncConfig.cmake"
  INSTALL_DESTINATION "${OTSYNC_INSTALL_CMAKEDIR}")
write_basic_package_version_file("${PROJECT_BINARY_DIR}/otsyncConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES "${PROJECT_BINARY_DIR}/otsyncConfig.cmake" "${PROJECT_BINARY_DIR}/otsyncConfigVersion.cmake"
  DESTINATION "${OTSYNC_INSTALL_CMAKEDIR}")
