#!/usr/bin/python3
"""Writes ../users.jsonl: one account per hash format, each hash made by the
originating algorithm's implementation (passlib, bcrypt, argon2-cffi, PHP).

Run with Debian's Python, which has the packages:
    apt-get install -y python3-passlib python3-bcrypt python3-argon2 php-cli
    cd testdata/import/gen && /usr/bin/python3 gen.py > ../users.jsonl

Every account's password is "correct horse " + its username; every account
gets a TOTP secret so a test can finish its sign-in.
"""
import base64, json, hashlib, subprocess, sys

import argon2
import bcrypt
from passlib.hash import phpass, django_pbkdf2_sha256, django_argon2


def php(*args):
    return subprocess.run(["php", *args], check=True, capture_output=True, text=True).stdout.strip()


def b32(name):
    # A fixed, distinct secret per account (20 bytes, as authenticator apps use).
    return base64.b32encode(hashlib.sha1(b"stile fixture " + name.encode()).digest()).decode()


ph_id = argon2.PasswordHasher()  # argon2-cffi 21.1 defaults: argon2id, t=2, m=102400, p=8, 16-byte hash
ph_i = argon2.PasswordHasher(type=argon2.Type.I, time_cost=2, memory_cost=19456, parallelism=1)

makers = [
    # username, what made it
    ("wp-phpass", lambda pw: phpass.using(ident="P", rounds=8).hash(pw)),          # WordPress < 6.8: PasswordHash(8, true)
    ("phpbb-phpass", lambda pw: phpass.using(ident="H", rounds=11).hash(pw)),      # phpBB 3
    ("wp-bcrypt", lambda pw: php("bcrypt.php", "--wordpress", pw)),                # WordPress 6.8: $wp$2y$10$
    ("laravel-bcrypt", lambda pw: php("bcrypt.php", pw)),                          # PHP password_hash: $2y$10$
    ("strapi-bcrypt", lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()),  # bcryptjs writes $2a$10$
    ("py-bcrypt", lambda pw: bcrypt.hashpw(pw.encode(), bcrypt.gensalt(12)).decode()),                    # $2b$12$
    ("django-pbkdf2", lambda pw: django_pbkdf2_sha256.using(rounds=1_000_000).hash(pw)),                 # Django 5.2's count
    ("django-argon2", lambda pw: django_argon2.using(type="ID", memory_cost=102400, rounds=2, parallelism=8).hash(pw)),  # Django's Argon2PasswordHasher parameters
    ("drupal7", lambda pw: php("drupal7.php", pw, "15")),                          # Drupal 7: $S$D (2^15)
    ("drupal7-upgraded", lambda pw: php("drupal7.php", "--upgraded", pw)),         # Drupal 6 md5 wrapped by user_update_7000
    ("phc-argon2id", lambda pw: ph_id.hash(pw)),
    ("phc-argon2i", lambda pw: ph_i.hash(pw)),
]

for i, (name, make) in enumerate(makers):
    pw = "correct horse " + name
    h = make(pw)
    rec = {
        "username": name,
        "email": name + "@example.com",
        "phone": "+4420794600%02d" % i,
        "roles": ["editor"] if i % 2 else ["member"],
        "attributes": {"origin": name.split("-")[0]},
        "password_hash": h,
        "totp_secret": b32(name),
    }
    print(json.dumps(rec, ensure_ascii=False))
