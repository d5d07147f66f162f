<?php
// The demo page: proves which SAPI serves it and that opcache is warm.
$opcache = function_exists('opcache_get_status') ? opcache_get_status(false) : false;
header('Content-Type: text/html; charset=UTF-8');
?>
<!doctype html>
<title>lowphp-fpm demo</title>
<h1>Hello from lowphp-fpm</h1>
<ul>
  <li>PHP <?= htmlspecialchars(PHP_VERSION) ?>, SAPI <code><?= PHP_SAPI ?></code></li>
  <li>worker pid <?= getmypid() ?>, running as <?= htmlspecialchars(posix_getpwuid(posix_geteuid())['name'] ?? '?') ?></li>
  <li>opcache: <?= $opcache && $opcache['opcache_enabled'] ? 'on, ' . $opcache['opcache_statistics']['hits'] . ' hits' : 'off' ?></li>
  <li>path info: <code><?= htmlspecialchars($_SERVER['PATH_INFO'] ?? '') ?></code></li>
</ul>
