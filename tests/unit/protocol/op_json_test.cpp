#include "otsync/protocol/op_json.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace otsync::protocol {
namespace {

using nlohmann::json;
using ot::errc;

std::error_code error_of(std::string_view text) {
  return op_from_json(json::parse(text)).error();
}

TEST(OpJson, RoundTripsEveryComponentForm) {
  const json wire = json::parse(R"([3, "hé😀", {"d": 2}, 1, {"d": "ab"}])");
  auto op = op_from_json(wire);
  ASSERT_TRUE(op.has_value()) << op.error().message();
  ASSERT_EQ(op->size(), 5U);
  EXPECT_EQ((*op)[1].length(), 3U);
  EXPECT_EQ(op_to_json(*op), wire);
}

TEST(OpJson, RejectsWhatJsonCannotMeanAsAnOp) {
  EXPECT_EQ(error_of(R"({"d": 1})"), errc::op_not_array);
  EXPECT_EQ(error_of(R"("abc")"), errc::op_not_array);
  EXPECT_EQ(error_of(R"([null])"), errc::null_component);
  EXPECT_EQ(error_of(R"([true])"), errc::boolean_component);
  EXPECT_EQ(error_of(R"([1.5, "x"])"), errc::non_integer_length);
  EXPECT_EQ(error_of(R"([{"d": 1.5}])"), errc::non_integer_length);
  EXPECT_EQ(error_of(R"([9007199254740992, "x"])"), errc::length_out_of_range);
  EXPECT_EQ(error_of(R"([{"d": 1e300}])"), errc::length_out_of_range);
}

TEST(OpJson, NamesEachCheckOpRejection) {
  EXPECT_EQ(error_of(R"([{}])"), errc::delete_not_number_or_string);
  EXPECT_EQ(error_of(R"([{"d": [1]}])"), errc::delete_not_number_or_string);
  EXPECT_EQ(error_of(R"([{"d": null}])"), errc::delete_not_number_or_string);
  EXPECT_EQ(error_of(R"([{"i": "x"}])"), errc::delete_not_number_or_string);
  EXPECT_EQ(error_of(R"([[1]])"), errc::delete_not_number_or_string);
  EXPECT_EQ(error_of(R"([{"d": 0}])"), errc::empty_delete);
  EXPECT_EQ(error_of(R"([{"d": -2}])"), errc::empty_delete);
  EXPECT_EQ(error_of(R"([{"d": ""}])"), errc::empty_delete);
  EXPECT_EQ(error_of(R"([""])"), errc::empty_insert);
  EXPECT_EQ(error_of(R"([0, "x"])"), errc::non_positive_skip);
  EXPECT_EQ(error_of(R"([-3, "x"])"), errc::non_positive_skip);
  EXPECT_EQ(error_of(R"([1, 2, "x"])"), errc::adjacent_skips);
  EXPECT_EQ(error_of(R"(["x", 2])"), errc::trailing_skip);
}

TEST(OpJson, ReportsTheFirstBadComponentAsCheckOpWould) {
  // checkOp meets the adjacent skips before the bad delete.
  EXPECT_EQ(error_of(R"([1, 1, {"d": [1]}])"), errc::adjacent_skips);
  EXPECT_EQ(error_of(R"([{"d": [1]}, 1, 1])"), errc::delete_not_number_or_string);
  // A trailing skip in the prefix is not an error yet.
  EXPECT_EQ(error_of(R"(["a", 1, null])"), errc::null_component);
}

TEST(OpJson, RejectsBadText) {
  const json lone = json::array({std::string("\xED\xA0\x80")});
  EXPECT_EQ(op_from_json(lone).error(), errc::lone_surrogate);
  const json broken = json::array({std::string("ab\xC3")});
  EXPECT_EQ(op_from_json(broken).error(), errc::invalid_utf8);
  // The parser itself refuses an escaped lone surrogate.
  EXPECT_TRUE(json::parse(R"(["\ud800"])", nullptr, false).is_discarded());
}

TEST(OpJson, IgnoresExtraKeysOfADeleteAsJsDoes) {
  auto op = op_from_json(json::parse(R"([{"d": 2, "x": 1}])"));
  ASSERT_TRUE(op.has_value());
  EXPECT_EQ(op_to_json(*op), json::parse(R"([{"d": 2}])"));
}

TEST(OpJson, AcceptsIntegralFloatsAndProgrammaticIntegers) {
  auto op = op_from_json(json::parse(R"([2.0, "x"])"));
  ASSERT_TRUE(op.has_value());
  EXPECT_EQ(op_to_json(*op), json::parse(R"([2, "x"])"));
  auto built = op_from_json(json::array({2, "x"}));  // int, not unsigned
  ASSERT_TRUE(built.has_value());
}

TEST(OpJson, UncheckedKeepsNonCanonicalOps) {
  auto op = op_from_json_unchecked(json::parse(R"([0, "", {"d": 0}, 2, 3])"));
  ASSERT_TRUE(op.has_value());
  EXPECT_EQ(op->size(), 5U);
}

TEST(OpJson, Selections) {
  EXPECT_EQ(*selection_from_json(json(3)), (ot::selection{3, 3}));
  EXPECT_EQ(*selection_from_json(json::parse("[4, 1]")), (ot::selection{4, 1}));
  EXPECT_EQ(selection_from_json(json("x")).error(), errc::invalid_selection);
  EXPECT_EQ(selection_from_json(json::parse("[1]")).error(), errc::invalid_selection);
}

}  // namespace
}  // namespace otsync::protocol

namespace otsync::protocol {
namespace {

TEST(OpJson, SelectionsAreBoundedIntegers) {
  using nlohmann::json;
  EXPECT_EQ(*selection_from_json(json(2.0)), (ot::selection{2, 2}));
  EXPECT_EQ(selection_from_json(json(-1)).error(), ot::errc::invalid_selection);
  EXPECT_EQ(selection_from_json(json(1.5)).error(), ot::errc::invalid_selection);
  EXPECT_EQ(selection_from_json(json(18446744073709551615ULL)).error(), ot::errc::length_out_of_range);
  EXPECT_EQ(selection_from_json(json::parse("[1, 2, 3]")).error(), ot::errc::invalid_selection);
}

}  // namespace
}  // namespace otsync::protocol
