<?php
// bcrypt the way PHP systems write it.
//
//   php bcrypt.php PASSWORD             Laravel / Drupal >= 10.1: password_hash($pw, PASSWORD_BCRYPT) -> $2y$10$
//   php bcrypt.php --wordpress PASSWORD WordPress 6.8 wp_hash_password (wp-includes/pluggable.php):
//                                        '$wp' . password_hash(base64_encode(hash_hmac('sha384', trim($pw), 'wp-sha384', true)), PASSWORD_BCRYPT)
//   php bcrypt.php --check PASSWORD HASH password_verify, or wp_check_password for $wp
if ($argv[1] === '--wordpress') {
  $pre = base64_encode(hash_hmac('sha384', trim($argv[2]), 'wp-sha384', true));
  echo '$wp' . password_hash($pre, PASSWORD_BCRYPT, ['cost' => 10]), "\n";
} elseif ($argv[1] === '--check') {
  [$pw, $hash] = [$argv[2], $argv[3]];
  if (str_starts_with($hash, '$wp')) {
    $pw = base64_encode(hash_hmac('sha384', $pw, 'wp-sha384', true));
    $hash = substr($hash, 3);
  }
  echo password_verify($pw, $hash) ? "ok\n" : "wrong\n";
} else {
  echo password_hash($argv[1], PASSWORD_BCRYPT, ['cost' => 10]), "\n";
}
