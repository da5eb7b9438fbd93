#include "otsync/oplog/snapshot.hpp"

#include <optional>
#include <type_traits>
#include <utility>
#include <variant>

#include "otsync/oplog/error.hpp"
#include "otsync/ot/rope.hpp"
#include "otsync/ot/text_unicode.hpp"

namespace otsync::oplog {

ot::result<snapshot> replay(snapshot base, std::span<const op_record> ops) {
  // Edits go to a rope built on the first edit after a create (or at the
  // start), so replaying many ops on a big text costs O(log n) per component
  // rather than a copy of the text per op. `text` holds the live data while
  // it exists; `base.data` is stale until the end.
  std::optional<ot::rope> text;
  for (const op_record& record : ops) {
    if (record.version != base.version) return errc::version_mismatch;
    std::error_code error = std::visit(
        [&](const auto& body) -> std::error_code {
          using body_type = std::decay_t<decltype(body)>;
          if constexpr (std::is_same_v<body_type, ot::op>) {
            if (!base.type_uri) return errc::doc_does_not_exist;
            if (!text) text.emplace(base.data);
            return ot::apply(*text, body);
          } else if constexpr (std::is_same_v<body_type, create_body>) {
            if (base.type_uri) return errc::doc_already_created;
            base.type_uri = body.type_uri;
            base.data = body.data;
            base.created = create_record{record.src, record.seq, record.version};
            text.reset();
            return {};
          } else {
            // A delete leaves the creator record: it still tells a resent
            // create (`v: null`) apart from a new one.
            base.type_uri.reset();
            base.data.clear();
            text.reset();
            return {};
          }
        },
        record.body);
    if (error) return error;
    ++base.version;
  }
  if (text) base.data = text->to_string();
  return base;
}

}  // namespace otsync::oplog
