// Worker mode's parts inside sapi/: the loop (worker_mode.cpp) and the state a
// handled request may change and must give back (worker_state.cpp).
#pragma once

#include <map>
#include <set>
#include <string>

#include "sapi_internal.h"

extern "C" {
#include "ext/session/php_session.h"
}

namespace lowphp::sapi {

// The engine state right after the worker script's boot, and the steps that
// give each handled request a fresh start from it.
class RequestState {
  public:
    // At the first lowphp_handle_request(): what the boot left is the baseline.
    void take_baseline(const std::string& keep_ini);
    void release_baseline();
    // Before the handler runs (output and SAPI already activated).
    void before_request();
    void fresh_superglobals();
    // After the handler: the request's shutdown functions and session (before
    // the response is complete), then the rest once it is out.
    void run_request_shutdown_functions();
    void end_session();
    void after_request();

  private:
    struct IniValue {
        bool set = false;
        std::string value;
        uint8_t modifiable = 0;
    };
    void take_other_baselines();
    void clear_last_error();
    void restore_ini();
    void restore_session_handlers();
    void restore_process_state();

    std::set<std::string> keep_ini_;
    std::map<std::string, IniValue> ini_; // EG(modified_ini_directives) at boot's end
    zval session_handlers_[PS_NUM_APIS]{};
    std::set<std::string> putenv_keys_; // BG(putenv_ht) at boot's end
    std::string locale_;
    bool has_timezone_ = false;
    std::string timezone_;
    UniqueFd cwd_;
    zend_long shutdown_base_ = 0;
};

} // namespace lowphp::sapi
