#!/bin/sh
# tests/dlclose with the plugin built here (libtool puts it in tests/.libs).
exec timeout -s KILL 120 "${top_builddir:-.}/tests/dlclose" "${top_builddir:-.}/tests/.libs/dlclose_plugin.so"
