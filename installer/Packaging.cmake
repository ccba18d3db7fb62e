# Installation layout and the Debian package (cpack -G DEB), included from the top level.
# The version comes from project(VERSION) only: binaries, man pages, metainfo and package.
include(GNUInstallDirs)

set(CORRAL_APP_ID io.corral.Corral)
install(TARGETS corral corralctl corral-agent corral-demo-worker RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# The demo site's public directory, served by the embedded proxy (issue 19). Copied beside
# bin/ in the build tree too, so share/corral/demo-public is found the same way from
# build/bin and /usr/bin (util/DemoPaths.h).
set(CORRAL_DEMO_PUBLIC_FILES welcome.html demo.css)
foreach(file ${CORRAL_DEMO_PUBLIC_FILES})
  configure_file(${PROJECT_SOURCE_DIR}/resources/demo-public/${file}
                 ${PROJECT_BINARY_DIR}/share/corral/demo-public/${file} COPYONLY)
  install(FILES ${PROJECT_SOURCE_DIR}/resources/demo-public/${file}
          DESTINATION ${CMAKE_INSTALL_DATADIR}/corral/demo-public)
endforeach()
install(FILES ${PROJECT_SOURCE_DIR}/resources/${CORRAL_APP_ID}.desktop
        DESTINATION ${CMAKE_INSTALL_DATADIR}/applications)
install(FILES ${PROJECT_SOURCE_DIR}/resources/icons/${CORRAL_APP_ID}.svg
        DESTINATION ${CMAKE_INSTALL_DATADIR}/icons/hicolor/scalable/apps)
configure_file(${PROJECT_SOURCE_DIR}/resources/${CORRAL_APP_ID}.metainfo.xml
               ${PROJECT_BINARY_DIR}/${CORRAL_APP_ID}.metainfo.xml @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/${CORRAL_APP_ID}.metainfo.xml DESTINATION ${CMAKE_INSTALL_DATADIR}/metainfo)

# Man pages are generated from the programs' own help, so they cannot drift from them; one for
# every program in bin/, gzipped as Debian policy asks (-n: no name or time stamp inside, so the
# same help gives the same bytes). The plain page stays beside the .gz for the test and for man -l.
set(corral_manpage_summary_corral "operations console for multi-process web apps")
set(corral_manpage_summary_corralctl "command line for Corral: sites, local clusters, the embedded balancer")
set(corral_manpage_summary_corral-agent "per-user agent that owns Corral's local sites")
set(corral_manpage_summary_corral-demo-worker "steerable HTTP backend for Corral's demo cluster and tests")
set(corral_manpages)
foreach(program corral corralctl corral-agent corral-demo-worker)
  set(page ${PROJECT_BINARY_DIR}/man/${program}.1)
  add_custom_command(
    OUTPUT ${page} ${page}.gz
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${PROJECT_SOURCE_DIR}/installer/manpage.sh $<TARGET_FILE:${program}> ${program}
            ${PROJECT_VERSION} "${corral_manpage_summary_${program}}" > ${page}
    COMMAND gzip -9nkf ${page}
    DEPENDS ${program} ${PROJECT_SOURCE_DIR}/installer/manpage.sh
    COMMENT "Generating man page ${program}.1" VERBATIM)
  list(APPEND corral_manpages ${page}.gz)
endforeach()
add_custom_target(manpages ALL DEPENDS ${corral_manpages})
install(FILES ${corral_manpages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
# The agent as a systemd user unit: systemctl --user enable --now corral-agent
install(FILES ${PROJECT_SOURCE_DIR}/resources/corral-agent.service
        DESTINATION lib/systemd/user)

# usr/share/doc/corral: the machine-readable copyright file (the licence text comes from LICENSE,
# so the two cannot differ) and the changelog Debian asks of a native package, dated from the
# commit being built (or SOURCE_DATE_EPOCH) so rebuilding one commit gives the same bytes.
set(corral_docdir ${CMAKE_INSTALL_DATAROOTDIR}/doc/corral)
file(READ ${PROJECT_SOURCE_DIR}/LICENSE corral_license)
string(REGEX REPLACE "^MIT License\n+" "" corral_license "${corral_license}")
string(REGEX REPLACE "\n+$" "" corral_license "${corral_license}")
string(REGEX REPLACE "\n\n" "\n.\n" corral_license "${corral_license}")
string(REGEX REPLACE "\n" "\n " CORRAL_LICENSE_TEXT " ${corral_license}")
configure_file(${PROJECT_SOURCE_DIR}/installer/copyright.in ${PROJECT_BINARY_DIR}/doc/copyright @ONLY)
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  execute_process(COMMAND git log -1 --format=%ct WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
                  OUTPUT_VARIABLE corral_commit_time OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(corral_commit_time MATCHES "^[0-9]+$")
    set(ENV{SOURCE_DATE_EPOCH} ${corral_commit_time})
  endif()
endif()
string(TIMESTAMP CORRAL_CHANGELOG_DATE "%a, %d %b %Y %H:%M:%S +0000" UTC)
configure_file(${PROJECT_SOURCE_DIR}/installer/changelog.in ${PROJECT_BINARY_DIR}/doc/changelog @ONLY)
add_custom_command(
  OUTPUT ${PROJECT_BINARY_DIR}/doc/changelog.gz
  COMMAND gzip -9nkf ${PROJECT_BINARY_DIR}/doc/changelog
  DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog VERBATIM)
add_custom_target(changelog ALL DEPENDS ${PROJECT_BINARY_DIR}/doc/changelog.gz)
install(FILES ${PROJECT_BINARY_DIR}/doc/copyright ${PROJECT_BINARY_DIR}/doc/changelog.gz
        DESTINATION ${corral_docdir})

set(CPACK_PACKAGE_NAME corral)
set(CPACK_PACKAGE_VENDOR "The Corral authors")
set(CPACK_PACKAGE_CONTACT "The Corral authors <corral@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
# Debian policy: the extended description's lines at most 80 columns (79 here with the
# leading space dpkg adds), wrapped by hand since CPack copies the lines as they are.
set(CPACK_PACKAGE_DESCRIPTION
    "Corral runs web apps as one single-threaded process per core behind a load\n"
    "balancer: it supervises the workers, balances them with an embedded proxy,\n"
    "drives nginx, HAProxy and Apache over SSH, and shows live per-process and\n"
    "per-backend charts.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE https://example.org/corral)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
