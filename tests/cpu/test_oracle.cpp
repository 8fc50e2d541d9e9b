#include "../catch.hpp"
TEST_CASE("placeholder") { REQUIRE(true); }
