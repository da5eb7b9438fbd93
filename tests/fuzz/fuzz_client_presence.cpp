// libFuzzer target: presence in the client library's protocol core
// (src/client/client_presence.cpp), as a hostile or broken server drives it.
//
// Input: steps separated by '\n', run against one core with presence on a
// document "docs/d" (connected, subscribed at version 1 with "abcdef"). A step
// starting with '\x01' is a local insert at the position its next byte names,
// '\x02' sets our selection from its next two bytes (none when the step is
// shorter) with the rest of the step as its data, anything else is fed as a server frame. Invariants, each an abort:
//   - nothing throws; parse_presence_frame accepts only presence frames of JSON objects;
//   - every frame the core sends is JSON;
//   - every remote presence it shows lies within the local text;
//   - it never keeps more remote presences (shown and waiting) than its bound.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "client/client_core.hpp"
#include "otsync/protocol/json_parse.hpp"

namespace {

using nlohmann::json;
using namespace otsync;

[[noreturn]] void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "invariant violated: %s\ninput: %.*s\n", what, static_cast<int>(text.size()), text.data());
  std::abort();
}

constexpr std::size_t max_remotes = 8;

void check_out(const client::client_core::outbox& out) {
  for (const auto& frame : out) {
    if (protocol::parse_json_bounded(frame).is_discarded()) fail("a frame sent is not JSON", frame);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  client::client_events events;
  client::client_core_options options;
  options.max_remote_presences = max_remotes;
  options.presence_history = 4;
  client::client_core core(nullptr, events, options);
  client::client_core::outbox out;
  client::doc_entry& doc = core.open("docs", "d", std::nullopt, out, events);
  core.enable_presence(doc, out);
  core.on_open();
  core.on_frame(R"({"a":"hs","protocol":1,"protocolMinor":2,"id":"me","type":"json0"})", out, events);
  core.on_frame(
      R"({"a":"s","c":"docs","d":"d","data":{"v":1,"data":"abcdef","type":"http://sharejs.org/types/text-unicode"}})",
      out, events);
  core.on_frame(R"({"a":"ps","ch":"docs.d","seq":1})", out, events);
  check_out(out);

  std::size_t start = 0;
  while (start <= input.size()) {
    std::size_t end = input.find('\n', start);
    if (end == std::string::npos) end = input.size();
    const std::string step = input.substr(start, end - start);
    start = end + 1;
    out.clear();
    if (!step.empty() && step[0] == '\x01') {
      if (doc.replica) {
        const auto length = doc.replica->text().size();
        const std::size_t at = step.size() > 1 ? static_cast<unsigned char>(step[1]) % (length + 1) : 0;
        (void)core.submit(doc, {ot::component::skip(at), ot::component::insert("q")}, out, events);
      }
    } else if (!step.empty() && step[0] == '\x02') {
      std::optional<ot::selection> range;
      if (step.size() > 2)
        range = ot::selection{static_cast<unsigned char>(step[1]), static_cast<unsigned char>(step[2])};
      (void)core.set_selection(doc, range, step.size() > 3 ? std::string_view(step).substr(3) : std::string_view(), out,
                               events);
    } else {
      if (auto frame = client::parse_presence_frame(step)) {
        json dom = protocol::parse_json_bounded(step);
        if (dom.is_discarded() || !dom.is_object()) fail("a presence frame that is not a JSON object", step);
      }
      core.on_frame(step, out, events);
    }
    check_out(out);
    const std::uint64_t length = doc.replica ? doc.replica->text().size() : 0;
    for (const auto& p : core.remote_presences(doc)) {
      if (p.selection && doc.replica && (p.selection->anchor > length || p.selection->focus > length))
        fail("a remote presence off the text", step);
    }
    // Distinct presences: one shown with a newer version waiting for our replica is one presence.
    std::size_t tracked = doc.presence->remotes.size();
    for (const auto& entry : doc.presence->waits) tracked += doc.presence->remotes.contains(entry.first) ? 0 : 1;
    if (tracked > max_remotes) fail("more than the bound", step);
    events = {};
  }
  return 0;
}
