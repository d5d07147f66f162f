"""Worker mode (issue 21): a pool with `worker.script` boots that script once
per worker, and every request of the pool, whatever SCRIPT_FILENAME nginx
sends, is served by the handler the script passes to
lowphp_handle_request() (alias frankenphp_handle_request). What a user must
see: the boot's state stays warm, and nothing of one request reaches the next
(superglobals, php://input, headers and status, cookies, output buffers,
uploads, sessions, ini, environment, shutdown functions, last error); errors
and exit() cost one response at most, a script that cannot boot makes the
pool answer 503 instead of looping, workers are recycled by
worker.max_requests / pm.max_memory, timeouts and the slow log apply per
request, reloads drop nothing, and FrankenPHP-style front controllers and a
small framework answer byte for byte as they do in a classic pool.

Most tests talk FastCGI to the pool directly (params as nginx's
fastcgi_params sends them); the front controller, framework, boot failure,
routing and reload tests go through a real nginx. Tests that need "the same
worker" run pm = static with one child: the same getmypid() and a boot-time
counter that goes up prove it is one warm worker.

The PHP fixtures are written into each test's temp dir from the strings
below: APP (the probe worker most tests use), FRONT_CONTROLLER (Symfony
Runtime / Octane convention) and FRAMEWORK (autoloader, container, router,
templates)."""
import hashlib
import json
import os
import re
import signal
import threading
import time
import urllib.parse

from lowphp_test import Backend, Nginx, TempDir, check, check_eq, check_in, fcgi, http, run, test, util, wait_for

# --------------------------------------------------------------------------- fixtures
# The probe worker. The handler first records what the request finds
# ("seen", before it changes anything), then runs the actions named in
# ?do=a,b,c ("act": their results). Its response body starts with one line of
# JSON {"seen": ..., "act": ...}; actions that print or end the request
# (ob, exit, finish_*, hang) run after that line.
APP = r"""<?php
// Probe worker for tests/integration/test_worker_mode.py (boots once per worker).

final class WmSessionService
{
    public static int $built = 0;

    public function __construct(public string $dir)
    {
        self::$built++;
        // as Symfony's NativeFileSessionHandler: set once, when the service is first built
        ini_set('session.save_path', $dir);
    }
}

final class WmRecordingSessionHandler implements SessionHandlerInterface
{
    public function __construct(private string $log)
    {
    }

    private function note(string $what): void
    {
        file_put_contents($this->log, $what . "\n", FILE_APPEND);
    }

    public function open(string $path, string $name): bool
    {
        $this->note('open');
        return true;
    }

    public function close(): bool
    {
        $this->note('close');
        return true;
    }

    public function read(string $id): string|false
    {
        $this->note('read');
        return '';
    }

    public function write(string $id, string $data): bool
    {
        $this->note('write ' . $data);
        return true;
    }

    public function destroy(string $id): bool
    {
        return true;
    }

    public function gc(int $max_lifetime): int|false
    {
        return 0;
    }
}

function wm_uploads(): array
{
    $out = [];
    foreach ($_FILES as $field => $f) {
        $tmp = is_string($f['tmp_name'] ?? null) ? $f['tmp_name'] : '';
        $exists = $tmp !== '' && is_file($tmp);
        $out[$field] = [
            'name' => $f['name'] ?? null,
            'size' => $f['size'] ?? null,
            'error' => $f['error'] ?? null,
            'tmp_name' => $tmp,
            'is_file' => $exists,
            'md5' => $exists ? md5_file($tmp) : null,
        ];
    }
    return $out;
}

function wm_functions(): array
{
    return [
        'lowphp_handle_request' => function_exists('lowphp_handle_request'),
        'frankenphp_handle_request' => function_exists('frankenphp_handle_request'),
        'frankenphp_finish_request' => function_exists('frankenphp_finish_request'),
    ];
}

function wm_slow_inner(float $seconds): void
{
    usleep((int) ($seconds * 1000000));
}

function wm_burn_cpu(float $seconds): int
{
    $end = microtime(true) + $seconds;
    $loops = 0;
    while (microtime(true) < $end) {
        $loops++;
    }
    return $loops;
}

$boot = [
    't' => microtime(true),
    'pid' => getmypid(),
    'frankenphp_worker' => $_SERVER['FRANKENPHP_WORKER'] ?? null,
    'lowphp_worker' => $_SERVER['LOWPHP_WORKER'] ?? null,
    'functions' => wm_functions(),
    'precision' => ini_get('precision'),
    'error_reporting' => error_reporting(),
    'timezone' => date_default_timezone_get(),
    'save_path' => ini_get('session.save_path'),
];
if ((string) getenv('WM_BOOT_SESSION_LOG') !== '') {
    // the app's own session save handler, set while it boots
    session_set_save_handler(new WmRecordingSessionHandler((string) getenv('WM_BOOT_SESSION_LOG')), false);
}
$handled = 0;      // boot-time state the handler updates
$kept = [];        // memory kept between requests (?do=grow)
$services = [];    // services built lazily, in a request

$handler = function () use ($boot, &$handled, &$kept, &$services): void {
    $handled++;
    $n = $handled;
    $last = error_get_last();
    $seen = [
        'n' => $n,
        'pid' => getmypid(),
        'boot' => $boot,
        'functions' => wm_functions(),
        'get' => (object) $_GET,
        'post' => (object) $_POST,
        'cookie' => (object) $_COOKIE,
        'request' => (object) $_REQUEST,
        'server' => (object) $_SERVER,
        'files' => (object) wm_uploads(),
        'input' => file_get_contents('php://input'),
        'session_isset' => isset($_SESSION),
        'session_status' => session_status(),
        'session_module' => session_module_name(),
        'save_handler' => ini_get('session.save_handler'),
        'save_path' => ini_get('session.save_path'),
        'precision' => ini_get('precision'),
        'third' => (string) (1 / 3),
        'error_reporting' => error_reporting(),
        'timezone' => date_default_timezone_get(),
        'env_x' => getenv('LOWPHP_WM_X'),
        'last_error' => $last === null ? null : $last['message'],
        'headers' => headers_list(),
        'response_code' => http_response_code(),
        'ob_level' => ob_get_level(),
        'services_built' => WmSessionService::$built,
    ];
    $act = [];
    $actions = array_values(array_filter(explode(',', (string) ($_GET['do'] ?? ''))));
    foreach ($actions as $action) {
        switch ($action) {
            case 'inject':
                $_GET['injected'] = 'get';
                $_POST['injected'] = 'post';
                $_COOKIE['injected'] = 'cookie';
                $_REQUEST['injected'] = 'request';
                $_SERVER['INJECTED'] = 'server';
                break;
            case 'headers':
                header('X-A: 1');
                http_response_code(418);
                setcookie('c', 'v');
                break;
            case 'login':
                session_start();
                $_SESSION['user'] = 'alice';
                $act['sid'] = session_id();
                break;
            case 'session_read':
                session_start();
                $act['session'] = (object) $_SESSION;
                $act['sid'] = session_id();
                $act['module'] = session_module_name();
                break;
            case 'session_write':
                $_SESSION['via'] = 'files';
                break;
            case 'custom_session':
                session_set_save_handler(new WmRecordingSessionHandler((string) $_GET['log']), true);
                session_start();
                $_SESSION['via'] = 'custom';
                $act['sid'] = session_id();
                $act['module'] = session_module_name();
                break;
            case 'lazy_session':
                $services['session'] ??= new WmSessionService((string) $_GET['dir']);
                session_start();
                $_SESSION['n'] = ($_SESSION['n'] ?? 0) + 1;
                $act['sid'] = session_id();
                $act['n'] = $_SESSION['n'];
                $act['save_path'] = session_save_path();
                break;
            case 'ini':
                ini_set('precision', '3');
                error_reporting(E_ERROR);
                date_default_timezone_set('Asia/Tokyo');
                $act['precision'] = ini_get('precision');
                $act['third'] = (string) (1 / 3);
                $act['error_reporting'] = error_reporting();
                $act['timezone'] = date_default_timezone_get();
                break;
            case 'putenv':
                putenv('LOWPHP_WM_X=1');
                $act['env_x'] = getenv('LOWPHP_WM_X');
                break;
            case 'shutdown':
                $mark = (string) $_GET['mark'];
                register_shutdown_function(function () use ($mark, $n): void {
                    file_put_contents($mark, "request $n\n", FILE_APPEND);
                    echo "shutdown-output-of-request-$n\n";
                });
                break;
            case 'warn':
                @trigger_error('wm-warning-from-request', E_USER_WARNING);
                $act['last_error'] = error_get_last()['message'] ?? null;
                break;
            case 'grow':
                $kept[] = str_repeat('g', 48 << 20);
                $act['kept_mb'] = 48 * count($kept);
                break;
            case 'throw':
                throw new Exception('handler-exception-' . ($_GET['token'] ?? ''));
            case 'undefined':
                wm_this_function_does_not_exist();
                break;
            case 'fatal':
                include __DIR__ . '/redeclare.php';
                break;
            case 'oom':
                $act['big'] = strlen(str_repeat('m', 64 << 20));
                break;
            case 'burn':
                $act['loops'] = wm_burn_cpu((float) $_GET['seconds']);
                break;
            case 'slow':
                wm_slow_inner((float) $_GET['seconds']);
                break;
        }
    }
    header('Content-Type: application/json');
    echo json_encode(['seen' => $seen, 'act' => (object) $act],
                     JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE), "\n";
    foreach ($actions as $action) {
        switch ($action) {
            case 'ob':
                ob_start();
                echo "left-open-in-request-$n\n";
                ob_start(fn (string $buffer): string => strtoupper($buffer));
                echo "inner-buffer-of-request-$n\n";
                break;
            case 'exit':
                echo "before-exit-in-request-$n\n";
                exit();
            case 'finish_fastcgi':
            case 'finish_frankenphp':
                if ($action === 'finish_fastcgi') {
                    fastcgi_finish_request();
                } else {
                    frankenphp_finish_request();
                }
                usleep(1000000);
                file_put_contents((string) $_GET['mark'], "after the sleep of request $n\n", FILE_APPEND);
                break;
            case 'hang':
                usleep((int) ((float) $_GET['seconds'] * 1000000));
                break;
        }
    }
};

while (lowphp_handle_request($handler)) {
    gc_collect_cycles();
}
"""

# Included by ?do=fatal: redeclaring a function is a compile-time fatal error
# (E_COMPILE_ERROR), which no try/catch can catch: the engine bails out.
REDECLARE = """<?php
function wm_uploads(): array
{
    return [];
}
"""

# What nginx's SCRIPT_FILENAME points at in the probe pools: a worker pool
# must never run it.
CLASSIC_MARKER = "<?php echo 'classic index.php ran instead of the worker handler';\n"

# A boot that fails: the app cannot start (before its first lowphp_handle_request).
BROKEN_BOOT = """<?php
// a deploy gone wrong: the app throws while it boots
throw new RuntimeException('worker boot failed: database unreachable');
"""

FIXED_BOOT = """<?php
$handler = function (): void {
    header('Content-Type: text/plain');
    echo 'fixed ', getmypid();
};
while (lowphp_handle_request($handler)) {
}
"""

# A front controller in the shape Symfony Runtime and Laravel Octane use with
# FrankenPHP: a worker loop when the runtime says so, one request otherwise.
FRONT_CONTROLLER = r"""<?php
final class Kernel
{
    private int $handled = 0;

    public function __construct(private string $env)
    {
    }

    public function handle(array $server, array $query, array $post): array
    {
        $this->handled++;
        $name = (string) ($post['name'] ?? $query['name'] ?? 'world');
        $body = "env={$this->env}\n"
              . 'method=' . ($server['REQUEST_METHOD'] ?? '') . "\n"
              . 'uri=' . ($server['REQUEST_URI'] ?? '') . "\n"
              . 'script_name=' . ($server['SCRIPT_NAME'] ?? '') . "\n"
              . 'path_info=' . ($server['PATH_INFO'] ?? '') . "\n"
              . 'query=' . json_encode($query) . "\n"
              . 'post=' . json_encode($post) . "\n"
              . 'hello ' . htmlspecialchars($name) . "\n";
        return [200, ['Content-Type' => 'text/plain; charset=utf-8', 'X-Handled' => (string) $this->handled], $body];
    }
}

$kernel = new Kernel('prod');
$app = function () use ($kernel): void {
    [$status, $headers, $body] = $kernel->handle($_SERVER, $_GET, $_POST);
    http_response_code($status);
    foreach ($headers as $name => $value) {
        header("$name: $value");
    }
    echo $body;
};

if (($_SERVER['FRANKENPHP_WORKER'] ?? false) && function_exists('frankenphp_handle_request')) {
    ignore_user_abort(true);
    $maxRequests = (int) ($_SERVER['MAX_REQUESTS'] ?? 0);
    for ($nbRequests = 0; !$maxRequests || $nbRequests < $maxRequests; ++$nbRequests) {
        $keepRunning = frankenphp_handle_request($app);
        gc_collect_cycles();
        if (!$keepRunning) {
            break;
        }
    }
} else {
    $app();
}
"""

# A small framework-shaped app: PSR-4-style autoloader over src/, a
# container of lazily built services, a router, templates with
# htmlspecialchars. public/index.php is its classic front controller,
# worker.php its worker-mode one.
FRAMEWORK = {
    "bootstrap.php": r"""<?php
spl_autoload_register(static function (string $class): void {
    if (str_starts_with($class, 'App\\')) {
        $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 4)) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});

$container = new App\Container();
$container->set(App\View::class, fn () => new App\View(__DIR__ . '/templates'));
$container->set(App\Greeter::class, fn () => new App\Greeter('Hello'));
$container->set(App\Controller\PageController::class, fn (App\Container $c) => new App\Controller\PageController(
    $c->get(App\View::class),
    $c->get(App\Greeter::class),
));
$container->set(App\Router::class, function (App\Container $c): App\Router {
    $pages = $c->get(App\Controller\PageController::class);
    $router = new App\Router([$pages, 'notFound']);
    $router->add('GET', '/', [$pages, 'home']);
    $router->add('GET', '/hello', [$pages, 'hello']);
    $router->add('POST', '/contact', [$pages, 'contact']);
    $router->add('GET', '/api/status', [$pages, 'status']);
    return $router;
});
$container->set(App\Kernel::class, fn (App\Container $c) => new App\Kernel($c->get(App\Router::class)));

return $container->get(App\Kernel::class);
""",
    "public/index.php": r"""<?php
$kernel = require __DIR__ . '/../bootstrap.php';
$kernel->handle(App\Request::fromGlobals())->send();
""",
    "worker.php": r"""<?php
$kernel = require __DIR__ . '/bootstrap.php';
$handler = static function () use ($kernel): void {
    $kernel->handle(App\Request::fromGlobals())->send();
};
while (lowphp_handle_request($handler)) {
    gc_collect_cycles();
}
""",
    "src/Container.php": r"""<?php
namespace App;

final class Container
{
    /** @var array<string, callable> */
    private array $factories = [];
    /** @var array<string, object> */
    private array $instances = [];

    public function set(string $id, callable $factory): void
    {
        $this->factories[$id] = $factory;
    }

    public function get(string $id): object
    {
        if (!isset($this->instances[$id])) {
            $factory = $this->factories[$id] ?? throw new \LogicException("no service $id");
            $this->instances[$id] = $factory($this);
        }
        return $this->instances[$id];
    }
}
""",
    "src/Kernel.php": r"""<?php
namespace App;

final class Kernel
{
    private int $handled = 0;

    public function __construct(private Router $router)
    {
    }

    public function handle(Request $request): Response
    {
        $this->handled++;
        $response = $this->router->dispatch($request);
        $response->headers['X-Kernel-Requests'] = (string) $this->handled;
        return $response;
    }
}
""",
    "src/Request.php": r"""<?php
namespace App;

final class Request
{
    public function __construct(
        public string $method,
        public string $path,
        public array $query,
        public array $post,
        public array $cookies,
    ) {
    }

    public static function fromGlobals(): self
    {
        $path = (string) ($_SERVER['PATH_INFO'] ?? '');
        return new self($_SERVER['REQUEST_METHOD'] ?? 'GET', $path === '' ? '/' : $path, $_GET, $_POST, $_COOKIE);
    }
}
""",
    "src/Response.php": r"""<?php
namespace App;

final class Response
{
    /** @var array<string, string> */
    private array $cookies = [];

    public function __construct(
        public string $body,
        public int $status = 200,
        public array $headers = ['Content-Type' => 'text/html; charset=UTF-8'],
    ) {
    }

    public function withCookie(string $name, string $value): self
    {
        $this->cookies[$name] = $value;
        return $this;
    }

    public function send(): void
    {
        http_response_code($this->status);
        foreach ($this->headers as $name => $value) {
            header("$name: $value");
        }
        foreach ($this->cookies as $name => $value) {
            setcookie($name, $value, ['path' => '/', 'httponly' => true, 'samesite' => 'Lax']);
        }
        echo $this->body;
    }
}
""",
    "src/Router.php": r"""<?php
namespace App;

final class Router
{
    /** @var array<string, array<string, callable>> */
    private array $routes = [];
    /** @var callable */
    private $notFound;

    public function __construct(callable $notFound)
    {
        $this->notFound = $notFound;
    }

    public function add(string $method, string $path, callable $action): void
    {
        $this->routes[$method][$path] = $action;
    }

    public function dispatch(Request $request): Response
    {
        $action = $this->routes[$request->method][$request->path] ?? null;
        if ($action !== null) {
            return $action($request);
        }
        $allowed = [];
        foreach ($this->routes as $method => $paths) {
            if (isset($paths[$request->path])) {
                $allowed[] = $method;
            }
        }
        if ($allowed) {
            return new Response("Method not allowed\n", 405,
                                ['Content-Type' => 'text/plain; charset=UTF-8', 'Allow' => implode(', ', $allowed)]);
        }
        return ($this->notFound)($request);
    }
}
""",
    "src/View.php": r"""<?php
namespace App;

final class View
{
    public function __construct(private string $dir)
    {
    }

    public function render(string $template, array $vars): string
    {
        $e = static fn ($value): string => htmlspecialchars((string) $value, ENT_QUOTES | ENT_SUBSTITUTE, 'UTF-8');
        $content = $this->capture($this->dir . '/' . $template . '.php', $vars + ['e' => $e]);
        return $this->capture($this->dir . '/layout.php',
                              ['title' => $vars['title'] ?? '', 'content' => $content, 'e' => $e]);
    }

    private function capture(string $__template, array $__vars): string
    {
        extract($__vars, EXTR_SKIP);
        ob_start();
        try {
            include $__template;
            return (string) ob_get_clean();
        } catch (\Throwable $t) {
            ob_end_clean();
            throw $t;
        }
    }
}
""",
    "src/Greeter.php": r"""<?php
namespace App;

final class Greeter
{
    public function __construct(private string $word)
    {
    }

    public function greet(?string $name): string
    {
        return $this->word . ', ' . (($name ?? '') === '' ? 'stranger' : $name) . '!';
    }
}
""",
    "src/Controller/PageController.php": r"""<?php
namespace App\Controller;

use App\Greeter;
use App\Request;
use App\Response;
use App\View;

final class PageController
{
    public function __construct(private View $view, private Greeter $greeter)
    {
    }

    public function home(Request $request): Response
    {
        $name = $request->cookies['contact_name'] ?? null;
        return new Response($this->view->render('home', ['title' => 'Home', 'name' => $name]));
    }

    public function hello(Request $request): Response
    {
        $tags = $request->query['tag'] ?? [];
        return new Response($this->view->render('hello', [
            'title' => 'Hello',
            'greeting' => $this->greeter->greet($request->query['name'] ?? null),
            'tags' => is_array($tags) ? $tags : [$tags],
        ]));
    }

    public function contact(Request $request): Response
    {
        $name = trim((string) ($request->post['name'] ?? ''));
        $message = trim((string) ($request->post['message'] ?? ''));
        $errors = [];
        if ($name === '') {
            $errors[] = 'Your name is missing.';
        }
        if ($message === '') {
            $errors[] = 'Your message is empty.';
        }
        if ($errors) {
            return new Response($this->view->render('contact', [
                'title' => 'Contact', 'errors' => $errors, 'name' => $name, 'message' => $message,
            ]), 422);
        }
        return (new Response($this->view->render('thanks', [
            'title' => 'Thanks', 'name' => $name, 'words' => str_word_count($message),
        ])))->withCookie('contact_name', $name);
    }

    public function status(Request $request): Response
    {
        $body = json_encode(['ok' => true, 'method' => $request->method, 'query' => $request->query,
                             'routes' => 4], JSON_UNESCAPED_SLASHES);
        return new Response($body, 200, ['Content-Type' => 'application/json']);
    }

    public function notFound(Request $request): Response
    {
        return new Response($this->view->render('not_found', ['title' => 'Not found', 'path' => $request->path]),
                            404);
    }
}
""",
    "templates/layout.php": r"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title><?= $e($title) ?> - Demo</title></head>
<body>
<?= $content ?>
</body>
</html>
""",
    "templates/home.php": r"""<?php if ($name !== null): ?>
<p>Welcome back, <?= $e($name) ?>.</p>
<?php else: ?>
<p>Welcome, guest.</p>
<?php endif ?>
""",
    "templates/hello.php": r"""<h1><?= $e($greeting) ?></h1>
<ul>
<?php foreach ($tags as $tag): ?>
  <li><?= $e($tag) ?></li>
<?php endforeach ?>
</ul>
""",
    "templates/contact.php": r"""<ul class="errors">
<?php foreach ($errors as $error): ?>
  <li><?= $e($error) ?></li>
<?php endforeach ?>
</ul>
<form method="post" action="/index.php/contact">
  <input name="name" value="<?= $e($name) ?>">
  <textarea name="message"><?= $e($message) ?></textarea>
</form>
""",
    "templates/thanks.php": r"""<p>Thanks, <?= $e($name) ?>: <?= (int) $words ?> words received.</p>
""",
    "templates/not_found.php": r"""<p>No page at <code><?= $e($path) ?></code>.</p>
""",
}


# --------------------------------------------------------------------------- helpers
class Answer:
    """One response, from FastCGI or through nginx: status, headers (list of
    (name, value)), body; `state` is the probe app's JSON line."""

    def __init__(self, status, headers, body, complete=True, took=0.0, logs=None):
        self.status = status
        self.headers = headers
        self.body = body
        self.complete = complete
        self.took = took
        self._logs = logs

    def header(self, name):
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    @property
    def state(self):
        first = self.body.split(b"\n", 1)[0]
        try:
            return json.loads(first)
        except ValueError:
            logs = self._logs() if self._logs else ""
            raise AssertionError(f"no JSON line from the worker handler: status {self.status}, "
                                 f"complete={self.complete}, body {self.body[:400]!r}\n{logs[-3000:]}")

    def __repr__(self):
        return f"<Answer {self.status} complete={self.complete} headers={self.headers} body={self.body[:300]!r}>"


class Pool:
    """A lowphp-fpm master with one pool "www" (pm = static) in worker mode,
    running `app` as worker.script (None: a classic pool, unless `script`
    names one written elsewhere). Its temp dir (`tmp`, handed over: removed
    at close) holds the worker script, www/ (the document root nginx and
    SCRIPT_FILENAME point at), php-errors.log (the pool's PHP error_log) and
    the backend's files. With `nginx`, a private nginx serves www/."""

    def __init__(self, app=APP, *, children=1, pool=None, ini=None, tmp=None, script=None, nginx=False):
        self.tmp = tmp or TempDir(prefix="lowphp-wm-")
        self.want_nginx = nginx
        self.root = self.tmp.join("www")
        self.script = script or self.tmp.join("worker.php")
        self.php_errors = self.tmp.join("php-errors.log")
        self.nginx = None
        os.makedirs(self.root, exist_ok=True)
        util.write_file(os.path.join(self.root, "index.php"), CLASSIC_MARKER)
        util.write_file(self.tmp.join("redeclare.php"), REDECLARE)
        if app is not None:
            util.write_file(self.script, app)
        settings = {"pm": "static", "pm.max_children": str(children)}
        if app is not None or script is not None:
            settings["worker.script"] = self.script
        settings["catch_workers_output"] = "yes"
        settings["php_admin_value[error_log]"] = self.php_errors
        settings.update(pool or {})
        self.b = Backend(pool=settings, ini=ini, tmp=self.tmp)

    def start(self, nginx=None):
        nginx = self.want_nginx if nginx is None else nginx
        try:
            self.b.start()
            if nginx:
                self.nginx = Nginx([(self.root, self.b.fastcgi_pass)]).start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self, check=True):
        """Stops nginx and the master; with check, raises if a process was
        left behind or the master needed SIGKILL."""
        try:
            if self.nginx:
                self.nginx.close()
                self.nginx = None
            if self.b.proc is not None:
                self.b.stop(check=check)
        finally:
            self.b.close()
            self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, exc_type, *rest):
        # a failing test's own error matters more than a complaint at stop
        self.close(check=exc_type is None)

    def logs(self):
        return (f"--- master error log ---\n{self.b.log()}"
                f"--- PHP error_log ---\n{util.read_text(self.php_errors)}")

    def php_log(self):
        return util.read_text(self.php_errors)

    def fcgi(self, uri="/index.php", *, method="GET", body=b"", content_type="", cookie=None,
             headers=None, script=None, timeout=10.0):
        """A request straight to the pool's socket, with the params nginx's
        fastcgi_params would send for `uri` (SCRIPT_FILENAME www/index.php)."""
        query = uri.partition("?")[2]
        script = script or os.path.join(self.root, "index.php")
        extra = {}
        if cookie:
            extra["HTTP_COOKIE"] = cookie
        for name, value in (headers or {}).items():
            extra["HTTP_" + name.upper().replace("-", "_")] = value
        params = fcgi.php_params(script, document_root=self.root, script_name="/" + os.path.basename(script),
                                 request_uri=uri, method=method, query=query, content_type=content_type,
                                 content_length=len(body), extra=extra)
        t0 = time.monotonic()
        with fcgi.Connection(self.b.address, timeout=timeout) as c:
            r = c.request(params, body)
        took = time.monotonic() - t0
        status, hdrs, out = r.split()
        return Answer(status, hdrs, out, r.complete, took, self.logs)

    def get(self, query="", **kw):
        return self.fcgi("/index.php" + ("?" + query if query else ""), **kw)

    def http(self, path, method="GET", body=None, headers=None, timeout=10.0):
        t0 = time.monotonic()
        r = http.request(self.nginx.port, method, path, body=body, headers=headers, timeout=timeout)
        return Answer(r.status, r.headers, r.body, True, time.monotonic() - t0, self.logs)


def ok(answer, what="request"):
    """The answer is a complete 200 from the handler; returns its state."""
    check(answer.complete and answer.status == 200, f"{what}: expected a complete 200, got {answer!r}")
    return answer.state


def q(**params):
    return urllib.parse.urlencode(params)


class Load:
    """`n` clients calling `one(k, i)` without pause (k: the client, i: its
    request count) while the `with` block runs. What `one` returns goes to
    .results; a Failed it raises, or an OSError / ValueError, to .errors."""

    class Failed(Exception):
        pass

    def __init__(self, one, n=2):
        self.one, self.results, self.errors, self.running = one, [], [], True
        self.threads = [threading.Thread(target=self.client, args=(k,), daemon=True) for k in range(n)]

    def client(self, k):
        i = 0
        while self.running:
            i += 1
            try:
                self.results.append(self.one(k, i))
            except (Load.Failed, OSError, ValueError) as e:
                self.errors.append(f"{type(e).__name__}: {e}")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.running = False
        for t in self.threads:
            t.join(timeout=15)

    def check_none_failed(self, at_least):
        check_eq(self.errors[:5], [], f"failed requests ({len(self.errors)} of "
                                      f"{len(self.errors) + len(self.results)})")
        check(len(self.results) >= at_least, f"only {len(self.results)} requests answered")


# --------------------------------------------------------------------------- warmth, routing
@test
def boot_state_stays_warm_between_requests():
    with Pool() as p:
        states = [ok(p.get(), f"request {i + 1}") for i in range(3)]
        seen = [s["seen"] for s in states]
        check_eq([s["n"] for s in seen], [1, 2, 3], "boot-time counter, request after request")
        check_eq(len({s["pid"] for s in seen}), 1,
                 f"one worker served the three requests: pids {[s['pid'] for s in seen]}")
        check_eq(len({s["boot"]["t"] for s in seen}), 1, "boot timestamp (the script booted once)")
        check_eq(seen[0]["boot"]["pid"], seen[0]["pid"], "the boot ran in the serving worker")
        check(seen[0]["boot"]["t"] <= float(seen[0]["server"]["REQUEST_TIME_FLOAT"]),
              f"the boot ran before the first request: {seen[0]['boot']['t']} / "
              f"{seen[0]['server']['REQUEST_TIME_FLOAT']}")
        check_eq((seen[0]["boot"]["frankenphp_worker"], seen[0]["boot"]["lowphp_worker"]), ("1", "1"),
                 "$_SERVER['FRANKENPHP_WORKER'] / ['LOWPHP_WORKER'] at boot")
        for s in seen:
            check_eq((s["server"].get("FRANKENPHP_WORKER"), s["server"].get("LOWPHP_WORKER")), ("1", "1"),
                     "$_SERVER['FRANKENPHP_WORKER'] / ['LOWPHP_WORKER'] in a request")


@test
def every_request_goes_to_the_handler_whatever_the_script_filename():
    """Through nginx: an existing .php file (that would print something else),
    a missing one, a path with PATH_INFO under /raw/ and a .txt routed to PHP
    all reach the handler of the one warm worker."""
    with Pool(nginx=True) as p:
        paths = ["/index.php?a=1", "/missing.php", "/raw/some/dir/thing.php/extra?q=1", "/txt/notes.txt"]
        seen = []
        for path in paths:
            a = p.http(path)
            s = ok(a, f"GET {path}")["seen"]
            check_eq(s["server"].get("REQUEST_URI"), path, f"REQUEST_URI of GET {path}")
            check("classic index.php ran" not in a.body.decode(errors="replace"), f"{path} ran index.php")
            seen.append(s)
        check_eq([s["n"] for s in seen], [1, 2, 3, 4], "one warm handler served them in turn")
        check_eq(len({s["pid"] for s in seen}), 1, "same worker")


@test
def worker_functions_exist_only_in_worker_pools():
    """A classic pool has no lowphp_handle_request / frankenphp_* functions
    and no FRANKENPHP_WORKER (apps that test function_exists() must keep
    their classic path there); a worker pool has them at boot and in each
    request."""
    with Pool(app=None) as classic:
        probe = os.path.join(classic.root, "probe.php")
        util.write_file(probe, """<?php
echo json_encode(['functions' => [
    'lowphp_handle_request' => function_exists('lowphp_handle_request'),
    'frankenphp_handle_request' => function_exists('frankenphp_handle_request'),
    'frankenphp_finish_request' => function_exists('frankenphp_finish_request'),
], 'frankenphp_worker' => $_SERVER['FRANKENPHP_WORKER'] ?? null, 'lowphp_worker' => $_SERVER['LOWPHP_WORKER'] ?? null]);
""")
        a = classic.fcgi("/probe.php", script=probe)
        check(a.complete and a.status == 200, f"classic probe answered: {a!r}")
        got = json.loads(a.body)
        check_eq(got["functions"], {"lowphp_handle_request": False, "frankenphp_handle_request": False,
                                    "frankenphp_finish_request": False}, "functions in a classic pool")
        check_eq((got["frankenphp_worker"], got["lowphp_worker"]), (None, None), "worker markers in a classic pool")
    with Pool() as p:
        s = ok(p.get())["seen"]
        everything = {"lowphp_handle_request": True, "frankenphp_handle_request": True,
                      "frankenphp_finish_request": True}
        check_eq(s["boot"]["functions"], everything, "functions at boot in a worker pool")
        check_eq(s["functions"], everything, "functions in a request of a worker pool")


# --------------------------------------------------------------------------- per-request state
@test
def superglobals_do_not_leak_between_requests():
    with Pool() as p:
        first = p.fcgi("/first/page?a=1&b=two&do=inject", method="POST", body=b"p=one&q=2",
                       content_type="application/x-www-form-urlencoded", cookie="k=v1; shared=first",
                       headers={"X-One": "one"})
        s1 = ok(first, "POST with a form")["seen"]
        check_eq(s1["get"], {"a": "1", "b": "two", "do": "inject"}, "$_GET of request 1")
        check_eq(s1["post"], {"p": "one", "q": "2"}, "$_POST of request 1")
        check_eq(s1["cookie"], {"k": "v1", "shared": "first"}, "$_COOKIE of request 1")
        check_eq(s1["request"], {"a": "1", "b": "two", "do": "inject", "p": "one", "q": "2"},
                 "$_REQUEST of request 1 (request_order GP)")
        check_eq(s1["input"], "p=one&q=2", "php://input of request 1")
        check_eq(s1["server"].get("HTTP_X_ONE"), "one", "HTTP_X_ONE of request 1")
        time.sleep(0.05)

        second = p.fcgi("/second?c=3", method="POST", body=b"second body, not a form",
                        content_type="text/plain", cookie="k2=v2", headers={"X-Two": "two"})
        s2 = ok(second, "POST text/plain")["seen"]
        check_eq(s2["pid"], s1["pid"], "the same worker served both")
        check_eq(s2["get"], {"c": "3"}, "$_GET of request 2")
        check_eq(s2["post"], {}, "$_POST of request 2 (a text/plain body is not a form)")
        check_eq(s2["cookie"], {"k2": "v2"}, "$_COOKIE of request 2")
        check_eq(s2["request"], {"c": "3"}, "$_REQUEST of request 2")
        check_eq(s2["input"], "second body, not a form", "php://input of request 2")
        server = s2["server"]
        check_eq((server.get("REQUEST_URI"), server.get("QUERY_STRING"), server.get("REQUEST_METHOD")),
                 ("/second?c=3", "c=3", "POST"), "REQUEST_URI, QUERY_STRING, REQUEST_METHOD of request 2")
        check_eq(server.get("HTTP_X_TWO"), "two", "HTTP_X_TWO of request 2")
        check("HTTP_X_ONE" not in server, "request 1's X-One header in request 2's $_SERVER")
        check("INJECTED" not in server, "a key request 1 wrote into $_SERVER is in request 2's")
        check_eq(server.get("CONTENT_TYPE"), "text/plain", "CONTENT_TYPE of request 2")
        check(float(server["REQUEST_TIME_FLOAT"]) - float(s1["server"]["REQUEST_TIME_FLOAT"]) >= 0.04,
              f"REQUEST_TIME_FLOAT advances: {s1['server']['REQUEST_TIME_FLOAT']} then {server['REQUEST_TIME_FLOAT']}")

        third = p.fcgi("/third", headers={"X-Three": "3"})
        s3 = ok(third, "GET")["seen"]
        check_eq((s3["get"], s3["post"], s3["cookie"], s3["request"], s3["input"]), ({}, {}, {}, {}, ""),
                 "$_GET, $_POST, $_COOKIE, $_REQUEST, php://input of a bare GET after two POSTs")
        server = s3["server"]
        check_eq((server.get("REQUEST_URI"), server.get("QUERY_STRING"), server.get("REQUEST_METHOD")),
                 ("/third", "", "GET"), "REQUEST_URI, QUERY_STRING, REQUEST_METHOD of request 3")
        check_eq(server.get("CONTENT_TYPE", ""), "", "CONTENT_TYPE of a GET after a POST")
        check_eq([k for k in server if k.startswith("HTTP_X_")], ["HTTP_X_THREE"], "HTTP_X_* of request 3")


@test
def headers_status_and_cookies_do_not_carry_over():
    with Pool() as p:
        base = ok(p.get(), "baseline request")["seen"]
        first = p.get(q(do="headers"))
        check(first.complete, f"request 1 answered: {first!r}")
        check_eq(first.status, 418, "status set by http_response_code(418)")
        check_eq(first.header("X-A"), "1", "X-A header of request 1")
        check(any(v.startswith("c=v") for v in first.header_all("Set-Cookie")),
              f"Set-Cookie c=v in request 1: {first.headers}")
        second = p.get()
        s = ok(second, "request after the one that set a status")["seen"]
        check_eq(second.header("X-A"), None, "request 1's X-A header in request 2")
        check_eq(second.header_all("Set-Cookie"), [], "request 1's cookie in request 2")
        check("X-A: 1" not in s["headers"], f"headers_list() at the start of request 2: {s['headers']}")
        check_eq(s["response_code"], base["response_code"], "http_response_code() at the start of request 2")
        check_eq(s["pid"], base["pid"], "same worker")


@test
def an_open_output_buffer_ends_in_its_own_response():
    with Pool() as p:
        base = ok(p.get(), "baseline request")["seen"]
        first = p.get(q(do="ob"))
        n1 = ok(first, "request leaving two buffers open")["seen"]["n"]
        check_in(f"left-open-in-request-{n1}\n".encode(), first.body, "request 1's open buffer")
        check_in(f"INNER-BUFFER-OF-REQUEST-{n1}\n".encode(), first.body,
                 "request 1's inner buffer, through its callback")
        second = p.get()
        s = ok(second, "next request")["seen"]
        check(b"left-open-in-request" not in second.body and b"INNER-BUFFER" not in second.body,
              f"request 1's buffered output in request 2: {second.body[:500]!r}")
        check_eq(s["ob_level"], base["ob_level"], "ob_get_level() at the start of a request")
        check_eq(s["pid"], base["pid"], "same worker")


@test
def uploads_are_removed_after_their_request():
    with Pool() as p:
        content = os.urandom(3000)
        body, ctype = http.multipart(fields=[("title", "report")],
                                     files=[("doc", "report.bin", "application/octet-stream", content)])
        first = p.fcgi("/upload", method="POST", body=body, content_type=ctype)
        s1 = ok(first, "multipart upload")["seen"]
        doc = s1["files"].get("doc")
        check(doc is not None, f"$_FILES of the upload: {s1['files']}")
        check_eq((doc["name"], doc["size"], doc["error"], doc["is_file"], doc["md5"]),
                 ("report.bin", len(content), 0, True, hashlib.md5(content).hexdigest()),
                 "the uploaded file, during its request")
        check_eq(s1["post"], {"title": "report"}, "$_POST of the multipart request")
        try:
            wait_for(lambda: not os.path.exists(doc["tmp_name"]), 3, what="upload removed")
        except TimeoutError:
            raise AssertionError(f"{doc['tmp_name']} still exists after its request (not moved by the app)")
        check_eq(os.listdir(p.b.upload_dir), [], "files left in upload_tmp_dir")
        s2 = ok(p.get(), "request after the upload")["seen"]
        check_eq((s2["files"], s2["post"]), ({}, {}), "$_FILES and $_POST of the next request")
        check_eq(s2["pid"], s1["pid"], "same worker")


@test
def sessions_do_not_leak_between_requests():
    """GHSA-r3xh-3r3w-47gp: after a request with a session, a request that
    does not start one must not see $_SESSION; a new session is empty; the
    first one was written at the end of its request. A save handler a
    request installs does not serve the next request."""
    tmp = TempDir(prefix="lowphp-wm-")
    sessions = tmp.join("sessions")
    os.makedirs(sessions)
    with Pool(tmp=tmp, ini={"session.save_path": sessions}) as p:
        first = p.get(q(do="login"))
        s1 = ok(first, "request that logs alice in")
        sid_a = s1["act"]["sid"]
        check(sid_a, "a session id")
        check(any(v.startswith(f"PHPSESSID={sid_a}") for v in first.header_all("Set-Cookie")),
              f"the session cookie is sent: {first.headers}")

        second = p.get()
        s2 = ok(second, "request without cookie nor session_start")["seen"]
        check_eq(s2["session_isset"], False, "isset($_SESSION) in a request that did not start a session")
        check_eq(s2["session_status"], 1, "session_status() (PHP_SESSION_NONE)")
        check_eq(second.header_all("Set-Cookie"), [], "Set-Cookie in a request without a session")

        third = ok(p.get(q(do="session_read")), "new session")
        check_eq(third["act"]["session"], {}, "a new session is empty")
        check(third["act"]["sid"] != sid_a, "a new session has a new id")

        fourth = ok(p.get(q(do="session_read"), cookie=f"PHPSESSID={sid_a}"), "alice again")
        check_eq(fourth["act"]["session"], {"user": "alice"}, "alice's session, written at the end of request 1")
        check_eq(fourth["act"]["sid"], sid_a, "alice's session id")

        log = tmp.join("handler.log")
        fifth = ok(p.get(q(do="custom_session", log=log)), "request with its own save handler")
        check_eq(fifth["act"]["module"], "user", "session_module_name() after session_set_save_handler()")
        wait_for(lambda: "write" in util.read_text(log), 3, what="the request's handler writes its session")
        calls = util.read_text(log)

        sixth = p.get(q(do="session_read,session_write"))
        s6 = ok(sixth, "request after the one with its own handler")
        check_eq((s6["seen"]["save_handler"], s6["seen"]["session_module"]), ("files", "files"),
                 "session.save_handler and session_module_name() at the start of the next request")
        check_eq(s6["act"]["module"], "files", "the next session uses the pool's handler")
        sid_6 = s6["act"]["sid"]
        wait_for(lambda: 'via|s:5:"files"' in util.read_text(os.path.join(sessions, f"sess_{sid_6}")), 3,
                 what="the next session written to session.save_path")
        time.sleep(0.2)
        check_eq(util.read_text(log), calls, "the previous request's save handler was called again")
        check_eq(len({s1["seen"]["pid"], s2["pid"], s6["seen"]["pid"]}), 1, "same worker")


@test
def a_save_handler_set_at_boot_outlives_one_a_request_sets():
    """The app sets its session save handler while it boots; one request
    installs another: the next request's session goes to the boot's handler
    again."""
    tmp = TempDir(prefix="lowphp-wm-")
    boot_log, request_log = tmp.join("boot-handler.log"), tmp.join("request-handler.log")
    with Pool(tmp=tmp, pool={"env[WM_BOOT_SESSION_LOG]": boot_log}) as p:
        first = ok(p.get(q(do="session_read,session_write")), "request using the boot's handler")
        check_eq(first["act"]["module"], "user", "session_module_name() with the boot's handler")
        wait_for(lambda: "write" in util.read_text(boot_log), 3, what="the boot's handler writes the session")
        ok(p.get(q(do="custom_session", log=request_log)), "request with its own handler")
        wait_for(lambda: "write" in util.read_text(request_log), 3, what="the request's handler writes its session")
        boot_calls, request_calls = util.read_text(boot_log), util.read_text(request_log)
        third = ok(p.get(q(do="session_read,session_write")), "next request")
        check_eq(third["seen"]["session_module"], "user", "session_module_name() at the start of the next request")
        try:
            wait_for(lambda: "write" in util.read_text(boot_log)[len(boot_calls):], 3)
        except TimeoutError:
            raise AssertionError(f"the boot's handler did not store the next request's session; "
                                 f"request handler log:\n{util.read_text(request_log)}")
        time.sleep(0.2)
        check_eq(util.read_text(request_log), request_calls, "the previous request's handler was called again")


@test
def ini_changes_are_undone_after_their_request():
    with Pool() as p:
        base = ok(p.get(), "baseline request")["seen"]
        boot = base["boot"]
        changed = ok(p.get(q(do="ini")), "request changing precision, error_reporting, timezone")["act"]
        check_eq((changed["precision"], changed["third"], changed["error_reporting"], changed["timezone"]),
                 ("3", "0.333", 1, "Asia/Tokyo"), "the changes inside their request")
        s = ok(p.get(), "next request")["seen"]
        check_eq((s["precision"], s["third"]), (boot["precision"], base["third"]),
                 "precision (ini_get and a float's string) in the next request")
        check_eq(s["error_reporting"], boot["error_reporting"], "error_reporting() in the next request")
        check_eq(s["timezone"], boot["timezone"], "date_default_timezone_get() in the next request")
        check_eq(s["pid"], base["pid"], "same worker")


@test
def keep_ini_keeps_a_value_a_lazy_service_set_once():
    """FrankenPHP #2185/#2203: a session service built in the first request
    that needs it calls ini_set('session.save_path') once; later requests
    must still store their sessions there (not 0-byte sessions elsewhere).
    worker.keep_ini lists such names; others are still reset."""
    tmp = TempDir(prefix="lowphp-wm-")
    boot_dir, app_dir = tmp.join("boot-sessions"), tmp.join("app-sessions")
    os.makedirs(boot_dir)
    os.makedirs(app_dir)
    with Pool(tmp=tmp, ini={"session.save_path": boot_dir}, pool={"worker.keep_ini": "session.save_path"}) as p:
        first = ok(p.get(q(do="lazy_session,ini", dir=app_dir)), "request that builds the service")
        check_eq((first["act"]["save_path"], first["act"]["n"], first["act"]["precision"]), (app_dir, 1, "3"),
                 "the service's save path, a new session, precision changed in the request")
        sid = first["act"]["sid"]
        second = ok(p.get(q(do="lazy_session", dir=app_dir), cookie=f"PHPSESSID={sid}"), "later request")
        check_eq(second["seen"]["services_built"], 1, "the service is built once (warm)")
        check_eq(second["seen"]["save_path"], app_dir, "session.save_path (in worker.keep_ini) in the next request")
        check_eq(second["seen"]["precision"], first["seen"]["boot"]["precision"],
                 "precision (not in worker.keep_ini) is still reset")
        check_eq(second["act"]["n"], 2, "the session written in request 1 is read back in request 2")
        stored = util.read_text(os.path.join(app_dir, f"sess_{sid}"))
        check_eq(stored, "n|i:2;", "session file in the service's directory after request 2")
        check_eq(os.listdir(boot_dir), [], "sessions written to the boot-time save_path")


@test
def putenv_does_not_leak_into_the_next_request():
    with Pool() as p:
        first = ok(p.get(q(do="putenv")), "request calling putenv")
        check_eq(first["act"]["env_x"], "1", "getenv() after putenv() in its request")
        s = ok(p.get(), "next request")["seen"]
        check_eq(s["env_x"], False, "getenv('LOWPHP_WM_X') in the next request")
        check("LOWPHP_WM_X" not in s["server"], "the variable in the next request's $_SERVER")
        check_eq(s["pid"], first["seen"]["pid"], "same worker")


@test
def shutdown_functions_run_at_the_end_of_their_request_only():
    tmp = TempDir(prefix="lowphp-wm-")
    mark = tmp.join("shutdown.txt")
    p = Pool(tmp=tmp).start()
    try:
        first = p.get(q(do="shutdown", mark=mark))
        n1 = ok(first, "request registering a shutdown function")["seen"]["n"]
        check_in(f"shutdown-output-of-request-{n1}\n".encode(), first.body,
                 "the shutdown function's output is part of its request's response")
        try:
            wait_for(lambda: util.read_text(mark), 2, what="the shutdown function")
        except TimeoutError:
            raise AssertionError("the shutdown function registered in request 1 did not run at its end")
        check_eq(util.read_text(mark), f"request {n1}\n", "shutdown function runs, once")
        for i in range(2):
            later = p.get()
            ok(later, f"later request {i + 1}")
            check(b"shutdown-output" not in later.body, f"the shutdown function ran again in a later request: "
                                                        f"{later.body[:300]!r}")
        time.sleep(0.2)
        check_eq(util.read_text(mark), f"request {n1}\n", "after two more requests")
        p.b.stop()
        check_eq(util.read_text(mark), f"request {n1}\n", "after the worker stopped")
    finally:
        p.close(check=False)


@test
def error_get_last_is_cleared_between_requests():
    with Pool() as p:
        first = ok(p.get(q(do="warn")), "request triggering a warning")
        check_eq(first["act"]["last_error"], "wm-warning-from-request", "error_get_last() in its request")
        s = ok(p.get(), "next request")["seen"]
        check_eq(s["last_error"], None, "error_get_last() at the start of the next request")
        check_eq(s["pid"], first["seen"]["pid"], "same worker")


# --------------------------------------------------------------------------- failures
FAILING_POOL = {"php_admin_value[display_errors]": "Off", "php_admin_value[memory_limit]": "32M"}


@test
def uncaught_exception_answers_500_and_the_same_worker_serves_on():
    with Pool(pool=FAILING_POOL) as p:
        before = ok(p.get(), "first request")["seen"]
        token = os.urandom(4).hex()
        failed = p.get(q(do="throw", token=token))
        check(failed.complete, f"the failing request is answered: {failed!r}")
        check_eq(failed.status, 500, "status of a request whose handler threw")
        check(b"handler-exception" not in failed.body, f"display_errors=Off: no message in the body: {failed!r}")
        try:
            wait_for(lambda: f"Uncaught Exception: handler-exception-{token}" in p.php_log() + p.b.log(), 3)
        except TimeoutError:
            raise AssertionError(f"no 'Uncaught Exception: handler-exception-{token}' logged\n{p.logs()}")
        after = ok(p.get(), "request after the exception")["seen"]
        check_eq(after["pid"], before["pid"], "the worker survived the exception (same pid)")
        check_eq(after["boot"]["t"], before["boot"]["t"], "no new boot")
        check(after["n"] > before["n"], "boot-time counter goes on")


@test
def exit_completes_the_response_and_a_new_worker_serves_next():
    with Pool(pool=FAILING_POOL) as p:
        before = ok(p.get(), "first request")["seen"]
        exited = p.get(q(do="exit"))
        s = ok(exited, "request whose handler calls exit()")["seen"]
        check_in(f"before-exit-in-request-{s['n']}\n".encode(), exited.body, "output before exit()")
        after = ok(p.get(), "request after exit()")["seen"]
        check(after["pid"] != before["pid"], f"exit() ends the worker: a new one serves (pid {after['pid']})")
        check_eq(after["n"], 1, "the new worker booted afresh")


@test
def undefined_function_answers_500_and_the_next_request_is_served():
    """Calling an undefined function throws Error (uncaught: "PHP Fatal
    error: Uncaught Error: Call to undefined function")."""
    with Pool(pool=FAILING_POOL) as p:
        ok(p.get(), "first request")
        failed = p.get(q(do="undefined"))
        check(failed.complete, f"the failing request is answered: {failed!r}")
        check_eq(failed.status, 500, "status of a call to an undefined function")
        check(b"wm_this_function_does_not_exist" not in failed.body, f"display_errors=Off: {failed!r}")
        try:
            wait_for(lambda: "Call to undefined function wm_this_function_does_not_exist()"
                     in p.php_log() + p.b.log(), 3)
        except TimeoutError:
            raise AssertionError(f"the error is not logged\n{p.logs()}")
        ok(p.get(), "request after the error")


@test
def fatal_error_answers_500_and_a_new_worker_serves_next():
    """A fatal error no catch can stop (an included file redeclares a
    function: E_COMPILE_ERROR) ends the worker after its response."""
    with Pool(pool=FAILING_POOL) as p:
        before = ok(p.get(), "first request")["seen"]
        failed = p.get(q(do="fatal"))
        check(failed.complete, f"the failing request is answered: {failed!r}")
        check_eq(failed.status, 500, "status of a fatal error")
        check(b"redeclare" not in failed.body, f"display_errors=Off: {failed!r}")
        try:
            wait_for(lambda: "Cannot redeclare wm_uploads()" in p.php_log() + p.b.log(), 3)
        except TimeoutError:
            raise AssertionError(f"the fatal error is not logged\n{p.logs()}")
        after = ok(p.get(), "request after the fatal error")["seen"]
        check(after["pid"] != before["pid"], f"a new worker serves after a fatal error (pid {after['pid']})")
        check_eq(after["n"], 1, "the new worker booted afresh")


@test
def memory_limit_exhaustion_answers_500_and_the_next_request_is_served():
    with Pool(pool=FAILING_POOL) as p:
        ok(p.get(), "first request")
        failed = p.get(q(do="oom"))
        check(failed.complete, f"the failing request is answered: {failed!r}")
        check_eq(failed.status, 500, "status when memory_limit (32M) is exhausted")
        try:
            wait_for(lambda: "Allowed memory size of 33554432 bytes exhausted" in p.php_log() + p.b.log(), 3)
        except TimeoutError:
            raise AssertionError(f"memory exhaustion is not logged\n{p.logs()}")
        for i in range(2):
            ok(p.get(), f"request {i + 1} after the memory exhaustion")


@test
def a_script_that_cannot_boot_makes_the_pool_answer_503_until_fixed():
    """worker.max_consecutive_failures = 3: the script throws at boot; after a
    few seconds nginx gets 503 at once (no hang, no endless 502), the master
    does not go on forking, the log names the script. Fixing the file and
    reloading (SIGUSR2) brings the pool back."""
    tmp = TempDir(prefix="lowphp-wm-")
    p = Pool(app=BROKEN_BOOT, tmp=tmp, pool={"worker.max_consecutive_failures": "3"})
    try:
        p.start(nginx=True)
        t0 = time.monotonic()
        seen = []
        while True:
            try:
                a = p.http("/index.php", timeout=8)
                seen.append((round(time.monotonic() - t0, 2), a.status))
                if a.status == 503:
                    break
            except OSError as e:
                seen.append((round(time.monotonic() - t0, 2), f"{type(e).__name__}"))
            if time.monotonic() - t0 > 12:
                raise AssertionError(f"no 503 within 12 s: {seen}\n{p.logs()}")
            time.sleep(0.2)
        for i in range(3):
            a = p.http("/index.php", timeout=5)
            check_eq(a.status, 503, f"request {i + 1} once the pool gave up")
            check(a.took < 1.5, f"a 503 comes at once, took {a.took:.2f}s")
        check_in(p.script, p.b.log(), "the master error log names the worker script")
        exits = len(re.findall(r"child \d+ exited", p.b.log()))
        time.sleep(3)
        more = len(re.findall(r"child \d+ exited", p.b.log())) - exits
        check(more <= 1, f"the pool keeps restarting the failing script: {more} more exits in 3 s\n{p.b.log()}")

        util.write_file(p.script, FIXED_BOOT)
        mark = p.b.log_mark()
        p.b.send_signal(signal.SIGUSR2)
        p.b.wait_log(r"ready to handle connections", mark, timeout=10)
        try:
            wait_for(lambda: p.http("/index.php", timeout=5).status == 200, 10, interval=0.2,
                     what="200 after the fix and the reload")
        except TimeoutError:
            raise AssertionError(f"still no 200 after the fix and a reload\n{p.logs()}")
        for i in range(3):
            a = p.http("/index.php")
            check(a.status == 200 and a.body.startswith(b"fixed "), f"request {i + 1} after the fix: {a!r}")
    finally:
        p.close(check=False)


# --------------------------------------------------------------------------- recycling, limits
@test
def worker_max_requests_recycles_without_failing_a_request():
    with Pool(pool={"worker.max_requests": "3"}) as p:
        seen = [ok(p.get(), f"request {i + 1}")["seen"] for i in range(7)]
        pids = [s["pid"] for s in seen]
        check_eq([s["n"] for s in seen], [1, 2, 3, 1, 2, 3, 1], "handled-requests counter of each worker")
        check(pids[0] == pids[1] == pids[2] and pids[3] == pids[4] == pids[5],
              f"three requests per worker: {pids}")
        check(len({pids[0], pids[3], pids[6]}) == 3, f"a new worker after every 3 requests: {pids}")


def resident_bytes(pid):
    """VmRSS of `pid`, once it has settled (the response leaves before the
    worker's cleanup after it)."""
    def now():
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0
    last = now()
    for _ in range(20):
        time.sleep(0.05)
        cur = now()
        if cur == last:
            return cur
        last = cur
    return last


@test
def pm_max_memory_recycles_a_worker_that_grows():
    """The handler keeps 48 MB more at each request (a boot-level array). The
    worker's size after one such request is measured first (it depends on the
    build and the extensions); with pm.max_memory halfway between one and two
    requests' growth, the worker is replaced after the second request, which
    is still answered, and not after the first."""
    with Pool(pool={"php_admin_value[memory_limit]": "512M"}) as probe:
        s = ok(probe.get(q(do="grow")), "measuring request")["seen"]
        one = resident_bytes(s["pid"])
    limit = (one + (24 << 20)) // 4096 * 4096
    with Pool(pool={"pm.max_memory": str(limit), "php_admin_value[memory_limit]": "512M"}) as p:
        first = ok(p.get(q(do="grow")), "request 1 (48 MB kept)")["seen"]
        mark = p.b.log_mark()
        second = ok(p.get(q(do="grow")), "request 2 (96 MB kept)")["seen"]
        check_eq(second["pid"], first["pid"], f"a worker under pm.max_memory ({limit} bytes) is not recycled")
        p.b.wait_log(r"\[pool www\] child %d exceeded pm.max_memory \((\d+) > %d bytes\)" % (first["pid"], limit),
                     mark, timeout=5)
        third = ok(p.get(), "request 3")["seen"]
        check(third["pid"] != first["pid"], f"the grown worker was replaced: pids {first['pid']}, {third['pid']}")
        check_eq(third["n"], 1, "the replacement booted afresh")


@test
def max_execution_time_counts_per_request():
    """max_execution_time = 1 (CPU time): three requests of 0.6 s each run in
    one warm worker (1.8 s in all), a request of more than 1 s is stopped
    with a 500, and the pool serves on."""
    with Pool(pool={"php_admin_value[max_execution_time]": "1", "php_admin_value[display_errors]": "Off"}) as p:
        seen = [ok(p.get(q(do="burn", seconds="0.6")), f"0.6 s request {i + 1}")["seen"] for i in range(3)]
        check_eq(len({s["pid"] for s in seen}), 1, "one worker ran the three requests")
        slow = p.get(q(do="burn", seconds="3"))
        check(slow.complete, f"the long request is answered: {slow!r}")
        check_eq(slow.status, 500, "status of a request over max_execution_time")
        check(slow.took < 2.5, f"stopped at about 1 s, took {slow.took:.2f}s")
        try:
            wait_for(lambda: "Maximum execution time of 1 second exceeded" in p.php_log() + p.b.log(), 3)
        except TimeoutError:
            raise AssertionError(f"the timeout is not logged\n{p.logs()}")
        ok(p.get(), "request after the timeout")


@test
def request_terminate_timeout_ends_a_stuck_request_not_an_idle_worker():
    with Pool(pool={"request_terminate_timeout": "1"}) as p:
        first = ok(p.get(), "first request")["seen"]
        time.sleep(2.2)  # waiting for a request is not running one
        second = ok(p.get(), "request after 2.2 s idle")["seen"]
        check_eq(second["pid"], first["pid"], "an idle worker is not terminated")
        check("execution timed out" not in p.b.log(), f"idle time counted as a request:\n{p.b.log()}")
        stuck = p.get(q(do="hang", seconds="4"))
        check(not stuck.complete, f"the stuck request is cut: {stuck!r}")
        check(stuck.took < 3, f"cut by the timeout, not by its end ({stuck.took:.2f}s)")
        p.b.wait_log(r"WARNING: \[pool www\] child %d, script '[^']*' \(request: \"GET [^\"]*do=hang[^\"]*\"\) "
                     r"execution timed out \(1\.\d{6} sec\), terminating" % first["pid"])
        after = ok(p.get(), "request after the timeout")["seen"]
        check(after["pid"] != first["pid"], "a new worker serves")


@test
def slowlog_shows_the_handler_backtrace():
    tmp = TempDir(prefix="lowphp-wm-")
    slowlog = tmp.join("slow.log")
    p = Pool(tmp=tmp, pool={"request_slowlog_timeout": "1", "slowlog": slowlog}).start()
    try:
        ok(p.get(), "first request")
        time.sleep(1.5)  # an idle worker is not a slow request
        check_eq(util.read_text(slowlog), "", "slow log after an idle second and a half")
        slow = p.get(q(do="slow", seconds="1.8"))
        ok(slow, "slow request")
        check(slow.took >= 1.7, f"the request ran its full 1.8 s ({slow.took:.2f}s)")
        try:
            text = wait_for(lambda: "wm_slow_inner()" in util.read_text(slowlog) and util.read_text(slowlog), 3)
        except TimeoutError:
            raise AssertionError(f"no backtrace in the slow log:\n{util.read_text(slowlog)}\n{p.logs()}")
        check(re.search(r"\] usleep\(\) [^\n]*worker\.php:\d+\n\[0x[0-9a-f]+\] wm_slow_inner\(\) ", text),
              f"the handler's frames in the slow log:\n{text}")
        p.b.wait_log(r"WARNING: \[pool www\] child \d+, script '[^']*' \(request: \"GET [^\"]*do=slow[^\"]*\"\) "
                     r"executing too slow \(1\.\d{6} sec\), logging")
    finally:
        p.close(check=False)


# --------------------------------------------------------------------------- finish request, reload
@test
def finish_request_answers_before_the_handler_ends():
    tmp = TempDir(prefix="lowphp-wm-")
    with Pool(tmp=tmp) as p:
        pids = set()
        for fn in ("finish_fastcgi", "finish_frankenphp"):
            mark = tmp.join(f"{fn}.txt")
            a = p.get(q(do=fn, mark=mark), timeout=10)
            s = ok(a, f"{fn}: request")["seen"]
            check(a.took < 0.8, f"{fn}: the response came after {a.took:.2f}s, before the handler's 1 s sleep ended")
            try:
                wait_for(lambda: util.read_text(mark), 3, what="the handler's end")
            except TimeoutError:
                raise AssertionError(f"{fn}: the handler did not go on after finishing the request\n{p.logs()}")
            check_eq(util.read_text(mark), f"after the sleep of request {s['n']}\n", f"{fn}: the rest ran")
            pids.add(s["pid"])
        after = ok(p.get(), "next request")["seen"]
        pids.add(after["pid"])
        check_eq(len(pids), 1, "the same worker served on after finishing early")
        check_eq(after["n"], 3, "boot-time counter")


@test
def reload_under_load_fails_no_request():
    """Two clients send requests through nginx without pause while the
    master gets SIGUSR2 three times: every request is answered 200 by a
    worker handler, and the workers after the reloads are new ones."""
    with Pool(children=2) as p:
        p.nginx = Nginx([(p.root, p.b.fastcgi_pass)]).start()

        def one(k, i):
            a = p.http(f"/load.php?c={k}&i={i}", timeout=10)
            if a.status != 200:
                raise Load.Failed(f"{a.status} {a.body[:200]!r}")
            return time.monotonic(), json.loads(a.body.split(b"\n", 1)[0])["seen"]["pid"]

        with Load(one) as load:
            time.sleep(0.7)
            started = time.monotonic()
            for _ in range(3):
                mark = p.b.log_mark()
                p.b.send_signal(signal.SIGUSR2)
                p.b.wait_log(r"ready to handle connections", mark, timeout=10)
                time.sleep(0.6)
            time.sleep(0.5)
        load.check_none_failed(30)
        results = load.results
        first = {pid for t, pid in results if t < started}
        last = {pid for t, pid in results[-10:]}
        check(first and not (first & last), f"new workers after the reloads: before {first}, at the end {last}")


ENV_SERVER = r"""<?php
$boot_env = count($_ENV);   // dotenv-style apps read $_ENV at boot
while (lowphp_handle_request(function () {
    echo json_encode(['uri' => $_SERVER['REQUEST_URI'], 'x' => $_SERVER['HTTP_X_TEST'] ?? null,
                      'env_x' => $_ENV['HTTP_X_TEST'] ?? null]);
})) {
}
"""


@test
def server_is_the_current_requests_with_variables_order_egpcs():
    """variables_order = EGPCS (PHP's built-in default) and an app that uses
    $_ENV: $_SERVER and $_ENV carry this request's params, never the last one's
    (a header only the first request sent is gone in the second)."""
    with Pool(ENV_SERVER, pool={"php_admin_value[variables_order]": "EGPCS"}) as p:
        first = p.fcgi("/one.php", headers={"X-Test": "secret-of-request-1"})
        check_eq(json.loads(first.body), {"uri": "/one.php", "x": "secret-of-request-1",
                                          "env_x": "secret-of-request-1"}, "request 1")
        second = p.fcgi("/two.php")
        check_eq(json.loads(second.body), {"uri": "/two.php", "x": None, "env_x": None}, "request 2")


@test
def a_worker_leaving_after_post_auth_and_upload_requests_exits_cleanly():
    """worker.max_requests = 3 after a JSON POST with Basic auth, an upload and
    a form POST: the request pointers PHP frees at each request's end must not
    be freed again when the worker's script ends (exit code 0, not a crash),
    and the next worker serves. PHP allocates with malloc here
    (USE_ZEND_ALLOC=0, read at the zygote's start): a double free aborts."""
    os.environ["USE_ZEND_ALLOC"] = "0"  # the master and its children take it at start
    try:
        with Pool(children=1, pool={"worker.max_requests": "3"}) as p:
            first = ok(p.get())["seen"]["pid"]
            ok(p.fcgi("/index.php", method="POST", body=b'{"a":1}', content_type="application/json",
                      headers={"Authorization": "Basic dXNlcjpwYXNz"}), "JSON POST with auth")
            body, ctype = http.multipart(fields=[("title", "report")],
                                         files=[("doc", "r.txt", "text/plain", b"contents")])
            ok(p.fcgi("/index.php", method="POST", body=body, content_type=ctype), "upload (3rd: the last)")
            wait_for(lambda: re.search(rf"child {first} exited", p.b.log()), 5, what="the worker's exit")
            check_in(f"child {first} exited with code 0", p.b.log(), "a clean exit after max_requests")
            check(ok(p.get(), "after the recycle")["seen"]["pid"] != first, "a new worker serves")
    finally:
        del os.environ["USE_ZEND_ALLOC"]


# --------------------------------------------------------------------------- status, worker.watch
@test
def status_page_shows_worker_mode_and_requests_per_worker():
    """pm.status_path of a worker pool: "mode": "worker", no boot failures,
    and the one worker's request count (3 handled + the status request)."""
    with Pool(children=1, pool={"pm.status_path": "/status"}) as p:
        for _ in range(3):
            ok(p.get())
        a = p.fcgi("/status?json&full", script=os.path.join(p.root, "status"))
        check_eq(a.status, 200, f"status page: {a!r}")
        st = json.loads(a.body)
        check_eq((st.get("mode"), st.get("worker boot failures")), ("worker", 0), f"status: {st}")
        check_eq([proc["requests"] for proc in st["processes"]], [4], "requests of the pool's worker")
        text = p.fcgi("/status", script=os.path.join(p.root, "status")).body.decode()
        check_in("mode:                 worker\n", text, "text status")


WATCHED = r"""<?php
$version = 'v1';
$boot = getmypid();
while (lowphp_handle_request(function () use ($version, $boot) {
    echo $version, ' ', $boot;
})) {
}
"""


@test
def worker_watch_serves_new_code_after_a_change_without_failing_a_request():
    """worker.watch on the app's directory, with opcache.validate_timestamps = 0
    (opcache would serve the old script for ever): a deploy that rewrites the
    worker script under load is served within seconds, by new workers, and no
    request fails meanwhile; the master logs which file changed."""
    tmp = TempDir(prefix="lowphp-wm-watch-")
    app_dir = tmp.join("app")
    with Pool(WATCHED, children=2, tmp=tmp, script=os.path.join(app_dir, "worker.php"),
              pool={"worker.watch": app_dir, "php_admin_value[opcache.validate_timestamps]": "0"}) as p:
        def one(k, i):
            a = p.get(timeout=10)
            if a.status != 200 or not a.complete:
                raise Load.Failed(repr(a))
            return time.monotonic(), a.body.decode()

        with Load(one) as load:
            answers = load.results
            time.sleep(0.5)
            mark = p.b.log_mark()
            changed = time.monotonic()
            util.write_file(os.path.join(app_dir, "worker.php"), WATCHED.replace("'v1'", "'v2'"))
            p.b.wait_log(r"\[pool www\] worker\.watch: '.*worker\.php' changed: restarting the pool's zygote and workers", mark, timeout=5)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(t > changed and b.startswith("v2") for t, b in answers):
                time.sleep(0.1)
            time.sleep(0.5)
        load.check_none_failed(1)
        before = {b for t, b in answers if t < changed}
        check(before and all(b.startswith("v1") for b in before), f"before the change: {before}")
        check(answers[-1][1].startswith("v2"), f"after the change: {answers[-5:]}")
        old_pids = {b.split()[1] for b in before}
        new_pids = {b.split()[1] for t, b in answers[-5:]}
        check(not (old_pids & new_pids), f"new workers serve the new code: {old_pids} then {new_pids}")


@test
def a_watched_fix_ends_the_503_state_without_a_reload():
    """A script that cannot boot under worker.watch: once the pool answers 503,
    saving a fixed script brings it back by itself (no SIGUSR2), and the master
    never reloaded."""
    tmp = TempDir(prefix="lowphp-wm-watchfix-")
    app_dir = tmp.join("app")
    with Pool(BROKEN_BOOT, tmp=tmp, script=os.path.join(app_dir, "worker.php"),
              pool={"worker.max_consecutive_failures": "2", "worker.watch": app_dir}) as p:
        try:
            wait_for(lambda: p.get(timeout=5).status == 503, 12, interval=0.2, what="503 from the broken boot")
        except TimeoutError:
            raise AssertionError(f"no 503 from the broken script\n{p.logs()}")
        util.write_file(p.script, FIXED_BOOT)
        try:
            wait_for(lambda: p.get(timeout=5).status == 200, 10, interval=0.2, what="200 after the fix")
        except TimeoutError:
            raise AssertionError(f"still no 200 after saving the fix\n{p.logs()}")
        check(p.get().body.startswith(b"fixed "), "the fixed script answers")
        check("Reloading" not in p.b.log(), f"the master reloaded:\n{p.b.log()}")


# --------------------------------------------------------------------------- worker.match
MATCH_WORKER = r"""<?php
$served = 0;
$handler = function () use (&$served) {
    $served++;
    header('Content-Type: application/json');
    echo json_encode(['kind' => 'worker', 'pid' => getmypid(), 'served' => $served,
                      'uri' => $_SERVER['REQUEST_URI'], 'fw' => $_SERVER['FRANKENPHP_WORKER'] ?? null]);
};
while (lowphp_handle_request($handler)) {
}
"""

MATCH_CLASSIC = r"""<?php
header('Content-Type: application/json');
try {
    lowphp_handle_request(fn () => null);
    $call = 'returned';
} catch (RuntimeException $e) {
    $call = $e->getMessage();
}
echo json_encode(['kind' => 'classic', 'pid' => getmypid(), 'uri' => $_SERVER['REQUEST_URI'],
                  'fw' => $_SERVER['FRANKENPHP_WORKER'] ?? null, 'call' => $call]);
"""


def match_pool():
    """4 workers: 2 run the worker script (paths under /api/), 2 run classic
    requests (anything else executes its SCRIPT_FILENAME)."""
    p = Pool(MATCH_WORKER, children=4, pool={"worker.match": '"^/api(/|$)"'})
    for name in ("page.php", "api/users.php", "apix.php", "api/deep/x.php"):
        util.write_file(os.path.join(p.root, name), MATCH_CLASSIC)
    return p


def with_keepalive_nginx(p):
    p.nginx = Nginx([(p.root, p.b.fastcgi_pass)], keepalive=True).start()


def mixed_load(p, paths):
    """Client k asks for paths in turn, starting at the k-th: (path, answer)."""
    def one(k, i):
        path = paths[(k + i) % len(paths)] + f"?i={i}"
        a = p.http(path, timeout=10)
        if a.status != 200:
            raise Load.Failed(f"{path}: {a.status} {a.body[:200]!r}")
        return path, json.loads(a.body)
    return one


@test
def worker_match_sends_matching_paths_to_the_script_and_the_rest_to_classic_workers():
    """worker.match = "^/api(/|$)": /api/... is answered by the warm handler
    (FRANKENPHP_WORKER set, one boot serving many), everything else runs its
    own script classically in the pool's other workers, where
    lowphp_handle_request() throws; under concurrent keep-alive load from
    three clients nothing fails and no request lands on the wrong kind."""
    with match_pool() as p:
        with_keepalive_nginx(p)
        paths = ["/api/users.php", "/page.php", "/apix.php", "/api/deep/x.php"]
        with Load(mixed_load(p, paths), 3) as load:
            time.sleep(2.5)
        load.check_none_failed(40)
        results = load.results
        wrong = [(path, r) for path, r in results
                 if (r["kind"] == "worker") != bool(re.match(r"^/api(/|$)", path))]
        check_eq(wrong[:3], [], "requests served by the wrong kind of worker")
        workers = {r["pid"] for _, r in results if r["kind"] == "worker"}
        classics = {r["pid"] for _, r in results if r["kind"] == "classic"}
        check(workers and classics and not (workers & classics), f"worker pids {workers}, classic {classics}")
        check(len(workers | classics) <= 4, f"more than the pool's 4 workers: {workers | classics}")
        check(all(r["fw"] == "1" for _, r in results if r["kind"] == "worker"), "FRANKENPHP_WORKER in the handler")
        check(all(r["fw"] is None and "not in worker mode" in r["call"] for _, r in results if r["kind"] == "classic"),
              f"classic requests: {[r for _, r in results if r['kind'] == 'classic'][:2]}")
        check(max(r["served"] for _, r in results if r["kind"] == "worker") > 5, "the worker script booted once")


@test
def worker_match_pool_reloads_under_load_without_a_failed_request():
    """The same mixed load while the master gets SIGUSR2 twice: connections
    passed between the two kinds of workers are never lost across generations."""
    with match_pool() as p:
        with_keepalive_nginx(p)
        with Load(mixed_load(p, ["/api/users.php", "/page.php"])) as load:
            time.sleep(0.6)
            for _ in range(2):
                mark = p.b.log_mark()
                p.b.send_signal(signal.SIGUSR2)
                p.b.wait_log(r"ready to handle connections", mark, timeout=10)
                time.sleep(0.6)
        load.check_none_failed(20)
        results = load.results
        wrong = [(path, r) for path, r in results if (r["kind"] == "worker") != path.startswith("/api/")]
        check_eq(wrong[:3], [], "requests served by the wrong kind of worker")


# --------------------------------------------------------------------------- unchanged apps
def classic_and_worker(script_rel, root_rel, files):
    """Writes `files` into a temp dir, starts a classic pool and nginx (two
    servers on the same document root: ports[0] classic, ports[1] the worker
    pool, started later). Returns (tmp, classic Pool, worker Pool, nginx)."""
    tmp = TempDir(prefix="lowphp-wm-app-")
    for rel, text in files.items():
        util.write_file(tmp.join(rel), text)
    root = tmp.join(root_rel)
    classic = Pool(app=None, tmp=TempDir(prefix="lowphp-wm-classic-"))
    worker = Pool(app=None, script=tmp.join(script_rel), tmp=TempDir(prefix="lowphp-wm-worker-"))
    nginx = Nginx([(root, classic.b.fastcgi_pass), (root, worker.b.fastcgi_pass)])
    return tmp, classic, worker, nginx


def fetch(port, requests):
    out = []
    for method, path, body, headers in requests:
        hdrs = dict(headers or {})
        if body is not None:
            hdrs.setdefault("Content-Type", "application/x-www-form-urlencoded")
        r = http.request(port, method, path, body=body, headers=hdrs)
        out.append(r)
    return out


def comparable(r):
    return {"status": r.status, "content-type": r.header("Content-Type"),
            "set-cookie": r.header_all("Set-Cookie"), "allow": r.header("Allow"), "body": r.text}


def run_side_by_side(script_rel, root_rel, files, requests, counter_header, check_classic):
    tmp, classic, worker, nginx = classic_and_worker(script_rel, root_rel, files)
    passed = False
    try:
        classic.start()
        nginx.start()
        got_classic = fetch(nginx.ports[0], requests)
        check_classic(got_classic)
        check_eq([r.header(counter_header) for r in got_classic], ["1"] * len(requests),
                 f"{counter_header} in a classic pool (one request per process image)")
        worker.b.start()
        got_worker = fetch(nginx.ports[1], requests)
        for (method, path, _, _), a, b in zip(requests, got_classic, got_worker):
            check_eq(comparable(b), comparable(a), f"{method} {path}: worker pool vs classic pool")
        check_eq([r.header(counter_header) for r in got_worker], [str(i + 1) for i in range(len(requests))],
                 f"{counter_header} in the worker pool (one warm kernel served them all)")
        passed = True
    finally:
        complaints = []
        for stop in (nginx.close, lambda: worker.close(check=passed), lambda: classic.close(check=passed)):
            try:
                stop()
            except AssertionError as e:
                complaints.append(str(e))
        tmp.cleanup()
        if complaints:
            raise AssertionError("\n".join(complaints))


@test
def frankenphp_runtime_front_controller_runs_unchanged():
    requests = [
        ("GET", "/index.php?name=Ada", None, None),
        ("GET", "/index.php/hello/world?x=1&y[]=2", None, None),
        ("POST", "/index.php/form", b"name=%3Cb%3EBob%3C%2Fb%3E&n=2", None),
        ("GET", "/index.php?name=second", None, None),
    ]

    def check_classic(got):
        for r in got:
            check(r.status == 200 and r.text.startswith("env=prod\n"), f"classic answer: {r!r}")
        check_in("hello &lt;b&gt;Bob&lt;/b&gt;\n", got[2].text, "classic POST answer")
        check_in("path_info=/hello/world\n", got[1].text, "classic PATH_INFO")

    run_side_by_side("www/index.php", "www", {"www/index.php": FRONT_CONTROLLER}, requests, "X-Handled",
                     check_classic)


FRAMEWORK_REQUESTS = [
    ("GET", "/index.php", None, None),
    ("GET", "/index.php/hello?name=Ada&tag[]=x&tag[]=%3Cb%3Ey%3C%2Fb%3E", None, None),
    ("GET", "/index.php/hello?name=%3Cscript%3Ealert(1)%3C%2Fscript%3E", None, None),
    ("GET", "/index.php/hello", None, None),
    ("POST", "/index.php/contact", b"name=Bob&message=Hi+there+from+Bob", None),
    ("POST", "/index.php/contact", b"name=Bob&message=", None),
    ("GET", "/index.php", None, {"Cookie": "contact_name=Bob"}),
    ("GET", "/index.php", None, None),
    ("GET", "/index.php/nope", None, None),
    ("GET", "/index.php/contact", None, None),
    ("GET", "/index.php/api/status?verbose=1", None, None),
]


@test
def framework_app_answers_the_same_in_classic_and_worker_pools():
    def check_classic(got):
        check_eq([r.status for r in got], [200, 200, 200, 200, 200, 422, 200, 200, 404, 405, 200],
                 "statuses in the classic pool")
        check_in("<p>Welcome, guest.</p>", got[0].text, "home")
        check_in("&lt;script&gt;alert(1)&lt;/script&gt;", got[2].text, "escaped name")
        check_in("Hello, stranger!", got[3].text, "no name")
        check(any(v.startswith("contact_name=Bob") for v in got[4].header_all("Set-Cookie")),
              f"contact sets a cookie: {got[4]!r}")
        check_in("Welcome back, Bob.", got[6].text, "home with the cookie")
        check_in("<p>Welcome, guest.</p>", got[7].text, "home without the cookie")
        check_eq(got[10].header("Content-Type"), "application/json", "API content type")

    run_side_by_side("app/worker.php", "app/public", {"app/" + k: v for k, v in FRAMEWORK.items()},
                     FRAMEWORK_REQUESTS, "X-Kernel-Requests", check_classic)


if __name__ == "__main__":
    run()
