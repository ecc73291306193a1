// tether/transfer/impl/src_core.hpp: tether::transfer's files, records, decisions and manager.
#pragma once

#include <tether/transfer/impl/src_begin.hpp>

#include <tether/transfer/impl/file.ipp>
#include <tether/transfer/impl/record.ipp>
#include <tether/transfer/impl/store.ipp>
#include <tether/transfer/impl/download_plan.ipp>
#include <tether/transfer/impl/segment_plan.ipp>
#include <tether/transfer/impl/retry_fsm.ipp>
#include <tether/transfer/impl/tus_plan.ipp>
#include <tether/transfer/impl/lifecycle.ipp>
#include <tether/transfer/impl/run_context.ipp>
#include <tether/transfer/impl/connection.ipp>
#include <tether/transfer/impl/scheduler.ipp>
#include <tether/transfer/impl/manager.ipp>

#include <tether/transfer/impl/src_end.hpp>
