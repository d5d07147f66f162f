"""The PHP scripts the tests request, written into a document root.

Each script is written at the root and again under raw/, snippet/,
phpvalue/ and txt/ so every nginx location (see nginx.location_blocks)
finds them.
"""
import os

from . import util

SUBDIRS = ("", "raw", "snippet", "phpvalue", "txt")

DUMP = r"""<?php
// Everything a request can observe, as JSON (keys sorted for diffs).
$files = [];
foreach ($_FILES as $k => $f) {
    $g = $f;
    // tmp_name is random: replace it (string or nested arrays) by the file's md5
    if (isset($f['tmp_name'])) {
        $md5 = function ($t) use (&$md5) {
            if (is_array($t)) return array_map($md5, $t);
            return $t !== '' && is_file($t) ? md5_file($t) : null;
        };
        $g['md5'] = $md5($f['tmp_name']);
        unset($g['tmp_name']);
    }
    $files[$k] = $g;
}
$server = $_SERVER;
ksort($server);
$input = file_get_contents('php://input');
$out = [
    'sapi' => PHP_SAPI,
    'server' => $server,
    'get' => $_GET,
    'post' => $_POST,
    'cookie' => $_COOKIE,
    'request' => $_REQUEST,
    'files' => $files,
    'env' => $_ENV,
    'getallheaders' => function_exists('getallheaders') ? getallheaders() : 'missing',
    'apache_request_headers' => function_exists('apache_request_headers') ? apache_request_headers() : 'missing',
    'getenv' => [
        'TEST_PARAM' => getenv('TEST_PARAM'),
        'POOL_ENV' => getenv('POOL_ENV'),
        'HTTP_PROXY' => getenv('HTTP_PROXY'),
        'HTTP_HOST' => getenv('HTTP_HOST'),
        'SCRIPT_NAME' => getenv('SCRIPT_NAME'),
        'PATH' => getenv('PATH'),
    ],
    'ini' => [
        'precision' => ini_get('precision'),
        'serialize_precision' => ini_get('serialize_precision'),
        'memory_limit' => ini_get('memory_limit'),
        'max_input_vars' => ini_get('max_input_vars'),
        'default_charset' => ini_get('default_charset'),
        'short_open_tag' => ini_get('short_open_tag'),
        'display_errors' => ini_get('display_errors'),
        'opcache.enable' => ini_get('opcache.enable'),
    ],
    'input_len' => strlen($input),
    'input_md5' => md5($input),
];
header('Content-Type: application/json');
echo json_encode($out, JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES), "\n";
"""

SCRIPTS = {
    "hello.php": "<?php echo \"Hello, world!\\n\";\n",
    "index.php": "<?php echo \"index of \", basename(__DIR__), \"\\n\";\n",
    "sub/index.php": "<?php echo \"sub index\\n\";\n",
    "dump.php": DUMP,
    "sapi.php": "<?php echo PHP_SAPI, \"\\n\";\n",
    "binary.php": "<?php echo PHP_BINARY, \"\\n\";\n",
    "pid.php": "<?php echo getmypid();\n",
    "query.php": "<?php header('Content-Type: application/json'); echo json_encode(['get' => $_GET, 'qs' => $_SERVER['QUERY_STRING']]);\n",
    "post.php": "<?php header('Content-Type: application/json'); echo json_encode(['method' => $_SERVER['REQUEST_METHOD'], 'post' => $_POST, 'ctype' => $_SERVER['CONTENT_TYPE'] ?? null]);\n",
    "upload.php": r"""<?php
$r = [];
foreach ($_FILES as $k => $f) {
    $r[$k] = ['name' => $f['name'], 'type' => $f['type'], 'size' => $f['size'], 'error' => $f['error'],
              'tmp_name' => $f['tmp_name'], 'exists' => is_file($f['tmp_name']),
              'md5' => is_file($f['tmp_name']) ? md5_file($f['tmp_name']) : null];
}
header('Content-Type: application/json');
echo json_encode(['files' => $r, 'post' => $_POST]);
""",
    "cookie.php": r"""<?php
setcookie('session', 'abc123', ['path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
setcookie('second', 'two words');
header('Content-Type: application/json');
echo json_encode($_COOKIE);
""",
    "redirect.php": "<?php header('Location: /hello.php'); echo \"moved\\n\";\n",
    "redirect301.php": "<?php header('Location: /hello.php', true, 301);\n",
    # flush() sends what PHP wrote, not the headers: with output_buffering the
    # body is still buffered, so a later header() is sent
    "flush_then_header.php": "<?php echo 'a'; flush(); header('X-After-Flush: 1'); echo \"b\\n\";\n",
    "code.php": "<?php http_response_code((int)($_GET['c'] ?? 200)); echo \"code\\n\";\n",
    "status.php": "<?php header('Status: 418 I\\'m a teapot'); echo \"teapot\\n\";\n",
    "header_remove.php": r"""<?php
header('X-Keep: 1');
header('X-Drop: 2');
header('X-Multi: a');
header('X-Multi: b', false);
header_remove('X-Drop');
header_remove('X-Powered-By');
echo "headers\n";
""",
    # reads the body (CONTENT_LENGTH bytes: PHP stops there), answers later
    "nul.php": r"""<?php
echo json_encode([$_SERVER['HTTP_X_NUL'] ?? null, getenv('HTTP_X_NUL'), $_SERVER['PATH_INFO'] ?? null,
                  $_SERVER['PHP_SELF']]);
""",
    "post_echo.php": r"""<?php
echo json_encode(['post' => $_POST, 'input' => file_get_contents('php://input')]);
""",
    "stream.php": r"""<?php
echo str_repeat('x', 9000);
usleep(600000);
echo 'y';
""",
    "long_poll.php": r"""<?php
// A long-poll loop: a space and flush() every 100 ms, PHP's own buffer
// (output_buffering) holding the spaces. Records how far it got.
$m = $_GET['m'];
register_shutdown_function(function () use ($m) {
    file_put_contents($m, " shutdown:" . connection_status(), FILE_APPEND);
});
for ($i = 0; $i < 30; $i++) {
    echo ' ';
    flush();
    file_put_contents($m, " $i", FILE_APPEND);
    usleep(100000);
}
""",
    "finish_thrice.php": r"""<?php
echo 'answered';
$r = [fastcgi_finish_request(), fastcgi_finish_request(), fastcgi_finish_request()];
file_put_contents($_GET['m'], json_encode($r));
""",
    "input_then_wait.php": r"""<?php
$body = file_get_contents('php://input');
usleep(300000);
echo strlen($body), "\n";
""",
    "input.php": r"""<?php
$in = fopen('php://input', 'rb');
$ctx = hash_init('md5');
$n = 0;
while (!feof($in)) { $c = fread($in, 65536); if ($c === false) break; $n += strlen($c); hash_update($ctx, $c); }
header('Content-Type: application/json');
echo json_encode(['len' => $n, 'md5' => hash_final($ctx), 'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null]);
""",
    "big.php": r"""<?php
// ?n bytes of a deterministic pattern: bytes i = chr(i % 251)
$n = (int)($_GET['n'] ?? 4194304);
$block = '';
for ($i = 0; $i < 251 * 256; $i++) $block .= chr($i % 251);
header('Content-Type: application/octet-stream');
$sent = 0;
while ($sent < $n) { $c = min(strlen($block), $n - $sent); echo substr($block, 0, $c); $sent += $c; }
""",
    "flush.php": r"""<?php
header('X-Accel-Buffering: no');
header('Content-Type: text/plain');
echo "first chunk\n";
while (ob_get_level()) ob_end_flush();
flush();
sleep(1);
echo "second chunk\n";
""",
    "finish.php": r"""<?php
$f = $_GET['f'];
echo "finished early\n";
fastcgi_finish_request();
sleep(2);
file_put_contents($f, "side effect " . getmypid());
""",
    "sleep.php": r"""<?php
$ms = (int)($_GET['ms'] ?? 1000);
header('X-Accel-Buffering: no');
echo "pid ", getmypid(), "\n";
while (ob_get_level()) ob_end_flush();
flush();
// a deadline loop: a signal (SIGQUIT for a graceful stop) interrupts usleep()
$end = microtime(true) + $ms / 1000;
while (($left = $end - microtime(true)) > 0) usleep((int)min(20000, $left * 1e6 + 1));
echo "slept $ms\n";
""",
    "busy.php": r"""<?php
// writes its pid to ?f= then sleeps ?ms= milliseconds
file_put_contents($_GET['f'] . '.tmp', getmypid());
rename($_GET['f'] . '.tmp', $_GET['f']);
$end = microtime(true) + (int)($_GET['ms'] ?? 1000) / 1000;
while (($left = $end - microtime(true)) > 0) usleep((int)min(20000, $left * 1e6 + 1));
echo "slept\n";
""",
    "opcache.php": r"""<?php
$s = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: application/json');
echo json_encode(['enabled' => $s ? $s['opcache_enabled'] : false,
                  'hits' => $s ? $s['opcache_statistics']['hits'] : -1,
                  'cached' => $s ? $s['opcache_statistics']['num_cached_scripts'] : -1]);
""",
    "server.php": r"""<?php
header('Content-Type: application/json');
$keys = ['SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'PATH_TRANSLATED', 'PHP_SELF', 'REQUEST_URI',
         'DOCUMENT_URI', 'QUERY_STRING', 'ORIG_SCRIPT_NAME', 'ORIG_PATH_INFO', 'ORIG_SCRIPT_FILENAME'];
$r = [];
foreach ($keys as $k) $r[$k] = $_SERVER[$k] ?? null;
echo json_encode($r, JSON_UNESCAPED_SLASHES);
""",
    "error.php": "<?php trigger_error('a user warning from the test', E_USER_WARNING); echo \"after warning\\n\";\n",
    "fatal.php": "<?php echo \"before\\n\"; undefined_function_xyz(); echo \"after\\n\";\n",
    "segv.php": "<?php echo \"crashing\\n\"; flush(); posix_kill(getmypid(), 11); sleep(5); echo \"survived\\n\";\n",
    "notes.txt": "<?php echo 'this text file must not run';\n",
}

STATIC = {
    "static.html": "<p>static</p>\n",
}


def make_docroot(root):
    """Write every script under root (and its location subdirs); return root."""
    os.makedirs(root, exist_ok=True)
    for sub in SUBDIRS:
        for name, text in list(SCRIPTS.items()) + list(STATIC.items()):
            util.write_file(os.path.join(root, sub, name), text)
    return root
