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

# Man pages are generated from the programs' own help, so they cannot drift from them.
set(corral_manpages)
foreach(program corral corralctl)
  if(program STREQUAL corral)
    set(summary "operations console for multi-process web apps")
  else()
    set(summary "command line for Corral: sites, local clusters, the embedded balancer")
  endif()
  add_custom_command(
    OUTPUT ${PROJECT_BINARY_DIR}/man/${program}.1
    COMMAND ${CMAKE_COMMAND} -E make_directory ${PROJECT_BINARY_DIR}/man
    COMMAND ${PROJECT_SOURCE_DIR}/installer/manpage.sh $<TARGET_FILE:${program}> ${program}
            ${PROJECT_VERSION} "${summary}" > ${PROJECT_BINARY_DIR}/man/${program}.1
    DEPENDS ${program} ${PROJECT_SOURCE_DIR}/installer/manpage.sh
    COMMENT "Generating man page ${program}.1" VERBATIM)
  list(APPEND corral_manpages ${PROJECT_BINARY_DIR}/man/${program}.1)
endforeach()
add_custom_target(manpages ALL DEPENDS ${corral_manpages})
# The agent as a systemd user unit: systemctl --user enable --now corral-agent
install(FILES ${PROJECT_SOURCE_DIR}/resources/corral-agent.service
        DESTINATION lib/systemd/user)
install(FILES ${corral_manpages} DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)

set(CPACK_PACKAGE_NAME corral)
set(CPACK_PACKAGE_VENDOR "The Corral authors")
set(CPACK_PACKAGE_CONTACT "The Corral authors <corral@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "${PROJECT_DESCRIPTION}")
set(CPACK_PACKAGE_DESCRIPTION
    "Corral runs web apps as one single-threaded process per core behind a load balancer:\n"
    "it supervises the workers, balances them with an embedded proxy, drives nginx and\n"
    "HAProxy over SSH, and shows live per-process and per-backend charts.")
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_GENERATOR DEB)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE https://example.org/corral)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_BINARY_DIR}/package)
include(CPack)
