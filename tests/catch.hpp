// Catch2 2.x (Debian 12) or 3.x (Ubuntu 24.04): the tests compile with either.
#pragma once
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif
