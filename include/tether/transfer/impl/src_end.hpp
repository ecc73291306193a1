// tether/transfer/impl/src_end.hpp: closes what src_begin.hpp opened (no include guard).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
