//! The span names: HAProxy's function names, in one place.
//!
//! Every span haflow opens is named after the HAProxy function it reproduces, and every
//! consumer (the Chrome trace, the terminal UI, the walkthrough, the book's listings and
//! the tests) refers to these constants, so a name cannot drift in one place only. The
//! table in ARCHITECTURE.md §4 lists them by phase.

/// Root span of a session's tree: `session{sess, fe, src}`.
pub const SESSION: &str = "session";

// init
/// cfgparse.c:readcfgfile()
pub const READCFGFILE: &str = "readcfgfile";
/// cfgparse.c:cfg_parse_global()
pub const CFG_PARSE_GLOBAL: &str = "cfg_parse_global";
/// cfgparse.c:cfg_parse_listen()
pub const CFG_PARSE_LISTEN: &str = "cfg_parse_listen";
/// cfgparse.c:str2listener()
pub const STR2LISTENER: &str = "str2listener";
/// proto_tcp.c:tcpv4_add_listener()
pub const TCPV4_ADD_LISTENER: &str = "tcpv4_add_listener";
/// cfgparse.c:check_config_validity()
pub const CHECK_CONFIG_VALIDITY: &str = "check_config_validity";
/// proxy.c:start_proxies()
pub const START_PROXIES: &str = "start_proxies";
/// haproxy.c:tell_old_pids()
pub const TELL_OLD_PIDS: &str = "tell_old_pids";
/// protocols.c:protocol_bind_all()
pub const PROTOCOL_BIND_ALL: &str = "protocol_bind_all";
/// proto_tcp.c:tcp_bind_listeners()
pub const TCP_BIND_LISTENERS: &str = "tcp_bind_listeners";
/// proto_tcp.c:tcp_bind_listener()
pub const TCP_BIND_LISTENER: &str = "tcp_bind_listener";
/// proto_uxst.c:uxst_bind_listener()
pub const UXST_BIND_LISTENER: &str = "uxst_bind_listener";
/// protocols.c:protocol_enable_all()
pub const PROTOCOL_ENABLE_ALL: &str = "protocol_enable_all";
/// protocols.c:enable_all_listeners()
pub const ENABLE_ALL_LISTENERS: &str = "enable_all_listeners";
/// protocols.c:enable_listener()
pub const ENABLE_LISTENER: &str = "enable_listener";

// signals: soft stop, pause and resume (a reload)
/// signal.c:signal_process_queue()
pub const SIGNAL_PROCESS_QUEUE: &str = "signal_process_queue";
/// haproxy.c:sig_soft_stop()
pub const SIG_SOFT_STOP: &str = "sig_soft_stop";
/// haproxy.c:sig_pause()
pub const SIG_PAUSE: &str = "sig_pause";
/// haproxy.c:sig_listen()
pub const SIG_LISTEN: &str = "sig_listen";
/// proxy.c:soft_stop()
pub const SOFT_STOP: &str = "soft_stop";
/// proxy.c:pause_proxies()
pub const PAUSE_PROXIES: &str = "pause_proxies";
/// proxy.c:pause_proxy()
pub const PAUSE_PROXY: &str = "pause_proxy";
/// protocols.c:pause_listener()
pub const PAUSE_LISTENER: &str = "pause_listener";
/// proxy.c:resume_proxies()
pub const RESUME_PROXIES: &str = "resume_proxies";
/// proxy.c:resume_proxy()
pub const RESUME_PROXY: &str = "resume_proxy";

// loop
/// haproxy.c:run_poll_loop()
pub const RUN_POLL_LOOP: &str = "run_poll_loop";
/// task.c:wake_expired_tasks()
pub const WAKE_EXPIRED_TASKS: &str = "wake_expired_tasks";
/// task.c:process_runnable_tasks()
pub const PROCESS_RUNNABLE_TASKS: &str = "process_runnable_tasks";
/// ev_epoll.c:_do_poll() in 1.5.0
pub const DO_POLL: &str = "_do_poll";

// accept
/// stream_sock.c:stream_sock_accept()
pub const STREAM_SOCK_ACCEPT: &str = "stream_sock_accept";
/// session.c:session_accept()
pub const SESSION_ACCEPT: &str = "session_accept";
/// frontend.c:frontend_accept()
pub const FRONTEND_ACCEPT: &str = "frontend_accept";
/// frontend.c:frontend_decode_proxy_request()
pub const FRONTEND_DECODE_PROXY_REQUEST: &str = "frontend_decode_proxy_request";
/// memory.h:pool_alloc2()
pub const POOL_ALLOC2: &str = "pool_alloc2";
/// memory.h:pool_free2()
pub const POOL_FREE2: &str = "pool_free2";
/// task.h:task_new()
pub const TASK_NEW: &str = "task_new";
/// task.h:task_wakeup()
pub const TASK_WAKEUP: &str = "task_wakeup";
/// task.h:task_delete()
pub const TASK_DELETE: &str = "task_delete";
/// task.h:task_free()
pub const TASK_FREE: &str = "task_free";
/// protocols.c:listener_full()
pub const LISTENER_FULL: &str = "listener_full";
/// protocols.c:limit_listener()
pub const LIMIT_LISTENER: &str = "limit_listener";
/// protocols.c:resume_listener()
pub const RESUME_LISTENER: &str = "resume_listener";
/// listener.c:manage_global_listener_queue() in 1.5.0
pub const MANAGE_GLOBAL_LISTENER_QUEUE: &str = "manage_global_listener_queue";

// I/O
/// stream_sock.c:stream_sock_read()
pub const STREAM_SOCK_READ: &str = "stream_sock_read";
/// stream_sock.c:stream_sock_write()
pub const STREAM_SOCK_WRITE: &str = "stream_sock_write";
/// raw_sock.c:raw_sock_to_pipe() in 1.5.0: kernel splicing from a socket into a pipe
pub const RAW_SOCK_TO_PIPE: &str = "raw_sock_to_pipe";
/// raw_sock.c:raw_sock_from_pipe() in 1.5.0: kernel splicing from a pipe into a socket
pub const RAW_SOCK_FROM_PIPE: &str = "raw_sock_from_pipe";
/// pipe.c:get_pipe() in 1.5.0: a new pipe for splicing (the pool had none free)
pub const GET_PIPE: &str = "get_pipe";
/// pipe.c:kill_pipe() in 1.5.0: a pipe closed with bytes still in it
pub const KILL_PIPE: &str = "kill_pipe";
/// stream_sock.c:stream_sock_shutr()
pub const STREAM_SOCK_SHUTR: &str = "stream_sock_shutr";
/// stream_sock.c:stream_sock_shutw()
pub const STREAM_SOCK_SHUTW: &str = "stream_sock_shutw";

// process
/// session.c:process_session()
pub const PROCESS_SESSION: &str = "process_session";
/// proto_http.c:http_wait_for_request()
pub const HTTP_WAIT_FOR_REQUEST: &str = "http_wait_for_request";
/// proto_http.c:http_process_req_common()
pub const HTTP_PROCESS_REQ_COMMON: &str = "http_process_req_common";
/// proto_http.c:http_handle_stats() in 1.5.0: a request for the statistics page
pub const HTTP_HANDLE_STATS: &str = "http_handle_stats";
/// dumpstats.c:http_stats_io_handler() in 1.5.0: the stats applet writing the page
pub const HTTP_STATS_IO_HANDLER: &str = "http_stats_io_handler";
/// proto_http.c:http_req_get_intercept_rule(): the `http-request` rules of one proxy
pub const HTTP_REQ_GET_INTERCEPT_RULE: &str = "http_req_get_intercept_rule";
/// proto_http.c:http_res_get_intercept_rule(): the `http-response` (and
/// `http-after-response`) rules of one proxy
pub const HTTP_RES_GET_INTERCEPT_RULE: &str = "http_res_get_intercept_rule";
/// http_ana.c:http_wait_for_msg_body() in 2.6: `option http-buffer-request` and
/// `wait-for-body` holding a message until its body is in the buffer
pub const HTTP_WAIT_FOR_MSG_BODY: &str = "http_wait_for_msg_body";
/// session.c:process_switching_rules()
pub const PROCESS_SWITCHING_RULES: &str = "process_switching_rules";
/// session.c:process_server_rules() in 1.5.0: the `use-server` rules (`AN_REQ_SRV_RULES`)
pub const PROCESS_SERVER_RULES: &str = "process_server_rules";
/// proto_tcp.c:tcp_inspect_request(): `tcp-request content` rules (`AN_REQ_INSPECT_FE`/`_BE`)
pub const TCP_INSPECT_REQUEST: &str = "tcp_inspect_request";
/// proto_tcp.c:tcp_inspect_response(): `tcp-response content` rules (`AN_RES_INSPECT`)
pub const TCP_INSPECT_RESPONSE: &str = "tcp_inspect_response";
/// proto_tcp.c:tcp_exec_req_rules(): `tcp-request connection` rules, at accept
pub const TCP_EXEC_REQ_RULES: &str = "tcp_exec_req_rules";
/// tcp_rules.c:tcp_exec_l5_rules() in 2.6: `tcp-request session` rules
pub const TCP_EXEC_L5_RULES: &str = "tcp_exec_l5_rules";
/// session.c:process_sticking_rules() in 1.5.0: `stick match|on|store-request`
pub const PROCESS_STICKING_RULES: &str = "process_sticking_rules";
/// session.c:process_store_rules() in 1.5.0: `stick store-response`, then the stores
pub const PROCESS_STORE_RULES: &str = "process_store_rules";
/// session.h:session_track_stkctr() in 1.5.0: a `track-sc*` rule starts tracking an entry
pub const SESSION_TRACK_STKCTR: &str = "session_track_stkctr";
/// session.h:session_store_counters() in 1.5.0: the session stops tracking its entries
pub const SESSION_STORE_COUNTERS: &str = "session_store_counters";
/// stick_table.c:process_table_expire() in 1.5.0: a stick table's expiry task
pub const PROCESS_TABLE_EXPIRE: &str = "process_table_expire";
/// proto_http.c:manage_client_side_cookies() in 1.5.0: the persistence cookie of a request
pub const MANAGE_CLIENT_SIDE_COOKIES: &str = "manage_client_side_cookies";
/// proto_http.c:manage_server_side_cookies() in 1.5.0: the persistence cookie of a response
pub const MANAGE_SERVER_SIDE_COOKIES: &str = "manage_server_side_cookies";
/// proto_http.c:http_process_request()
pub const HTTP_PROCESS_REQUEST: &str = "http_process_request";
/// proto_http.c:http_request_forward_body()
pub const HTTP_REQUEST_FORWARD_BODY: &str = "http_request_forward_body";
/// proto_http.c:http_wait_for_response()
pub const HTTP_WAIT_FOR_RESPONSE: &str = "http_wait_for_response";
/// proto_http.c:http_process_res_common()
pub const HTTP_PROCESS_RES_COMMON: &str = "http_process_res_common";
/// proto_http.c:http_response_forward_body()
pub const HTTP_RESPONSE_FORWARD_BODY: &str = "http_response_forward_body";
/// proto_http.c:select_compression_request_header() in 1.5.0
pub const SELECT_COMPRESSION_REQUEST_HEADER: &str = "select_compression_request_header";
/// proto_http.c:select_compression_response_header() in 1.5.0
pub const SELECT_COMPRESSION_RESPONSE_HEADER: &str = "select_compression_response_header";
/// compression.c:http_compression_buffer_end() in 1.5.0, when it writes a chunk
pub const HTTP_COMPRESSION_BUFFER_END: &str = "http_compression_buffer_end";
/// cache.c:http_action_req_cache_use() in 2.6
pub const HTTP_ACTION_REQ_CACHE_USE: &str = "http_action_req_cache_use";
/// cache.c:http_action_store_cache() in 2.6
pub const HTTP_ACTION_STORE_CACHE: &str = "http_action_store_cache";
/// cache.c:http_cache_io_handler() in 2.6, the cache applet, as 1.5.0's si_applet_call()
pub const HTTP_CACHE_IO_HANDLER: &str = "http_cache_io_handler";
/// proto_http.c:http_end_txn_clean_session()
pub const HTTP_END_TXN_CLEAN_SESSION: &str = "http_end_txn_clean_session";
/// proto_http.c:http_resync_states() in 1.5.0, traced when it switches to a tunnel
pub const HTTP_RESYNC_STATES: &str = "http_resync_states";
/// session.c:sess_prepare_conn_req()
pub const SESS_PREPARE_CONN_REQ: &str = "sess_prepare_conn_req";
/// backend.c:assign_server()
pub const ASSIGN_SERVER: &str = "assign_server";
/// backend.c:connect_server()
pub const CONNECT_SERVER: &str = "connect_server";
/// proto_tcp.c:tcp_connect_server()
pub const TCP_CONNECT_SERVER: &str = "tcp_connect_server";
/// backend.c:conn_backend_get() in 2.6
pub const CONN_BACKEND_GET: &str = "conn_backend_get";
/// server.c:srv_add_to_idle_list() in 2.6
pub const SRV_ADD_TO_IDLE_LIST: &str = "srv_add_to_idle_list";
/// server.c:srv_cleanup_idle_conns() in 2.6
pub const SRV_CLEANUP_IDLE_CONNS: &str = "srv_cleanup_idle_conns";
/// session.c:sess_update_stream_int()
pub const SESS_UPDATE_STREAM_INT: &str = "sess_update_stream_int";
/// session.c:sess_update_st_con_tcp()
pub const SESS_UPDATE_ST_CON_TCP: &str = "sess_update_st_con_tcp";
/// session.c:sess_update_st_cer()
pub const SESS_UPDATE_ST_CER: &str = "sess_update_st_cer";
/// session.c:sess_establish()
pub const SESS_ESTABLISH: &str = "sess_establish";
/// queue.c:pendconn_add()
pub const PENDCONN_ADD: &str = "pendconn_add";
/// queue.c:process_srv_queue()
pub const PROCESS_SRV_QUEUE: &str = "process_srv_queue";
/// session.c:session_free()
pub const SESSION_FREE: &str = "session_free";

// health checks
/// checks.c:start_checks()
pub const START_CHECKS: &str = "start_checks";
/// checks.c:process_chk()
pub const PROCESS_CHK: &str = "process_chk";
/// checks.c:event_srv_chk_w()
pub const EVENT_SRV_CHK_W: &str = "event_srv_chk_w";
/// checks.c:event_srv_chk_r()
pub const EVENT_SRV_CHK_R: &str = "event_srv_chk_r";
/// checks.c:wake_srv_chk() in 1.5.0
pub const WAKE_SRV_CHK: &str = "wake_srv_chk";
/// checks.c:tcpcheck_main() in 1.5.0 (tcpcheck.c in 2.6)
pub const TCPCHECK_MAIN: &str = "tcpcheck_main";
/// checks.c:set_server_down()
pub const SET_SERVER_DOWN: &str = "set_server_down";
/// checks.c:set_server_up()
pub const SET_SERVER_UP: &str = "set_server_up";
