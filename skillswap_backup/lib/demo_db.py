"""The SkillSwap demo database: the schema a Drizzle ORM app creates, filled with deterministic data.

Design:

* The schema is what drizzle-kit generates for a SkillSwap app (serial ids, snake_case columns,
  `timestamp` defaults, `<table>_<column>_<ref>_id_fk` names), plus drizzle's own
  `drizzle.__drizzle_migrations` journal, so backups are exercised on the shape they will meet.
* The DDL is split like pg_dump's sections: tables, then rows, then keys, foreign keys and
  indexes. Building each index once over loaded rows is far faster than maintaining it per row.
* Rows are generated in blocks. Block b holds exactly the seed's counts (24 users, 127 skills,
  ...), ids offset by b times each count, and every reference stays inside its block; `scale=N`
  is N blocks. So every scale keeps the seed's shape, uniqueness and foreign keys, and memory
  holds one block whatever the scale.
* Each block draws from its own `random.Random` seeded by its number: a build is reproducible
  byte for byte, and block 0 of any scale is the seed itself.
* Each non-empty table is loaded by its own COPY on its own connection, all open at once, so one
  pass over the blocks feeds every table while the server ingests them in parallel.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import random
import unicodedata
from collections import Counter, defaultdict
from contextlib import ExitStack
from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

import bcrypt
import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

DEMO_COUNTS: dict[str, int] = {
    "skills": 127,
    "user_skills_offered": 61,
    "user_skills_wanted": 41,
    "users": 24,
    "swap_requests": 10,
    "swap_ratings": 8,
    "notifications": 3,
    "messages": 0,
    "conversations": 0,
}
DEMO_USER_EMAIL = "demo@skillswap.example"
DEMO_USER_PASSWORD = "swap-skills-demo-2024"
DEMO_ADMIN_EMAIL = "admin@skillswap.example"
DRIZZLE_MIGRATIONS = "drizzle.__drizzle_migrations"

_TABLES_SQL = """
CREATE TABLE users (
    id serial,
    email varchar(255) NOT NULL,
    password text NOT NULL,
    first_name varchar(100) NOT NULL,
    last_name varchar(100) NOT NULL,
    bio text,
    location varchar(255),
    profile_image_url text,
    availability jsonb,
    rating numeric(3, 2) DEFAULT '0' NOT NULL,
    total_swaps integer DEFAULT 0 NOT NULL,
    role text DEFAULT 'user' NOT NULL,
    is_admin boolean DEFAULT false NOT NULL,
    created_at timestamp DEFAULT now() NOT NULL,
    updated_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE skills (
    id serial,
    name varchar(100) NOT NULL,
    category varchar(50) NOT NULL,
    description text,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE user_skills_offered (
    id serial,
    user_id integer NOT NULL,
    skill_id integer NOT NULL,
    proficiency_level text NOT NULL,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE user_skills_wanted (
    id serial,
    user_id integer NOT NULL,
    skill_id integer NOT NULL,
    desired_level text NOT NULL,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE swap_requests (
    id serial,
    requester_id integer NOT NULL,
    recipient_id integer NOT NULL,
    offered_skill_id integer NOT NULL,
    wanted_skill_id integer NOT NULL,
    status text DEFAULT 'pending' NOT NULL
        CONSTRAINT swap_requests_status_check
        CHECK (status IN ('pending', 'accepted', 'rejected', 'completed', 'cancelled')),
    message text,
    created_at timestamp DEFAULT now() NOT NULL,
    updated_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE swap_ratings (
    id serial,
    swap_request_id integer NOT NULL,
    rater_id integer NOT NULL,
    rated_user_id integer NOT NULL,
    rating integer NOT NULL CONSTRAINT swap_ratings_rating_check CHECK (rating BETWEEN 1 AND 5),
    comment text,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE notifications (
    id serial,
    user_id integer NOT NULL,
    type varchar(50) NOT NULL,
    title text NOT NULL,
    message text NOT NULL,
    is_read boolean DEFAULT false NOT NULL,
    related_id integer,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE conversations (
    id serial,
    participant1_id integer NOT NULL,
    participant2_id integer NOT NULL,
    swap_request_id integer,
    created_at timestamp DEFAULT now() NOT NULL,
    updated_at timestamp DEFAULT now() NOT NULL
);
CREATE TABLE messages (
    id serial,
    conversation_id integer NOT NULL,
    sender_id integer NOT NULL,
    content text NOT NULL,
    is_read boolean DEFAULT false NOT NULL,
    created_at timestamp DEFAULT now() NOT NULL
);
CREATE SCHEMA IF NOT EXISTS "drizzle";
CREATE TABLE IF NOT EXISTS "drizzle"."__drizzle_migrations" (
    id SERIAL PRIMARY KEY,
    hash text NOT NULL,
    created_at bigint
);
"""

# A unique constraint whose first column is a foreign key also serves as that key's index.
_CONSTRAINTS_SQL = """
ALTER TABLE users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
ALTER TABLE users ADD CONSTRAINT users_email_unique UNIQUE (email);
ALTER TABLE skills ADD CONSTRAINT skills_pkey PRIMARY KEY (id);
ALTER TABLE skills ADD CONSTRAINT skills_name_unique UNIQUE (name);
ALTER TABLE user_skills_offered ADD CONSTRAINT user_skills_offered_pkey PRIMARY KEY (id);
ALTER TABLE user_skills_offered ADD CONSTRAINT user_skills_offered_user_id_skill_id_unique
    UNIQUE (user_id, skill_id);
ALTER TABLE user_skills_wanted ADD CONSTRAINT user_skills_wanted_pkey PRIMARY KEY (id);
ALTER TABLE user_skills_wanted ADD CONSTRAINT user_skills_wanted_user_id_skill_id_unique
    UNIQUE (user_id, skill_id);
ALTER TABLE swap_requests ADD CONSTRAINT swap_requests_pkey PRIMARY KEY (id);
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_pkey PRIMARY KEY (id);
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_swap_request_id_rater_id_unique
    UNIQUE (swap_request_id, rater_id);
ALTER TABLE notifications ADD CONSTRAINT notifications_pkey PRIMARY KEY (id);
ALTER TABLE conversations ADD CONSTRAINT conversations_pkey PRIMARY KEY (id);
ALTER TABLE messages ADD CONSTRAINT messages_pkey PRIMARY KEY (id);

ALTER TABLE user_skills_offered ADD CONSTRAINT user_skills_offered_user_id_users_id_fk
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE user_skills_offered ADD CONSTRAINT user_skills_offered_skill_id_skills_id_fk
    FOREIGN KEY (skill_id) REFERENCES skills(id) ON DELETE CASCADE;
ALTER TABLE user_skills_wanted ADD CONSTRAINT user_skills_wanted_user_id_users_id_fk
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE user_skills_wanted ADD CONSTRAINT user_skills_wanted_skill_id_skills_id_fk
    FOREIGN KEY (skill_id) REFERENCES skills(id) ON DELETE CASCADE;
ALTER TABLE swap_requests ADD CONSTRAINT swap_requests_requester_id_users_id_fk
    FOREIGN KEY (requester_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE swap_requests ADD CONSTRAINT swap_requests_recipient_id_users_id_fk
    FOREIGN KEY (recipient_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE swap_requests ADD CONSTRAINT swap_requests_offered_skill_id_skills_id_fk
    FOREIGN KEY (offered_skill_id) REFERENCES skills(id) ON DELETE CASCADE;
ALTER TABLE swap_requests ADD CONSTRAINT swap_requests_wanted_skill_id_skills_id_fk
    FOREIGN KEY (wanted_skill_id) REFERENCES skills(id) ON DELETE CASCADE;
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_swap_request_id_swap_requests_id_fk
    FOREIGN KEY (swap_request_id) REFERENCES swap_requests(id) ON DELETE CASCADE;
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_rater_id_users_id_fk
    FOREIGN KEY (rater_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE swap_ratings ADD CONSTRAINT swap_ratings_rated_user_id_users_id_fk
    FOREIGN KEY (rated_user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE notifications ADD CONSTRAINT notifications_user_id_users_id_fk
    FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE conversations ADD CONSTRAINT conversations_participant1_id_users_id_fk
    FOREIGN KEY (participant1_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE conversations ADD CONSTRAINT conversations_participant2_id_users_id_fk
    FOREIGN KEY (participant2_id) REFERENCES users(id) ON DELETE CASCADE;
ALTER TABLE conversations ADD CONSTRAINT conversations_swap_request_id_swap_requests_id_fk
    FOREIGN KEY (swap_request_id) REFERENCES swap_requests(id) ON DELETE CASCADE;
ALTER TABLE messages ADD CONSTRAINT messages_conversation_id_conversations_id_fk
    FOREIGN KEY (conversation_id) REFERENCES conversations(id) ON DELETE CASCADE;
ALTER TABLE messages ADD CONSTRAINT messages_sender_id_users_id_fk
    FOREIGN KEY (sender_id) REFERENCES users(id) ON DELETE CASCADE;

CREATE INDEX user_skills_offered_skill_id_idx ON user_skills_offered (skill_id);
CREATE INDEX user_skills_wanted_skill_id_idx ON user_skills_wanted (skill_id);
CREATE INDEX swap_requests_requester_id_idx ON swap_requests (requester_id);
CREATE INDEX swap_requests_recipient_id_idx ON swap_requests (recipient_id);
CREATE INDEX swap_requests_offered_skill_id_idx ON swap_requests (offered_skill_id);
CREATE INDEX swap_requests_wanted_skill_id_idx ON swap_requests (wanted_skill_id);
CREATE INDEX swap_ratings_rater_id_idx ON swap_ratings (rater_id);
CREATE INDEX swap_ratings_rated_user_id_idx ON swap_ratings (rated_user_id);
CREATE INDEX notifications_user_id_idx ON notifications (user_id);
CREATE INDEX conversations_participant1_id_idx ON conversations (participant1_id);
CREATE INDEX conversations_participant2_id_idx ON conversations (participant2_id);
CREATE INDEX conversations_swap_request_id_idx ON conversations (swap_request_id);
CREATE INDEX messages_conversation_id_idx ON messages (conversation_id);
CREATE INDEX messages_sender_id_idx ON messages (sender_id);
"""

# Column order of the row tuples generated below.
_COLUMNS: dict[str, tuple[str, ...]] = {
    "skills": ("id", "name", "category", "description", "created_at"),
    "users": (
        "id", "email", "password", "first_name", "last_name", "bio", "location",
        "profile_image_url", "availability", "rating", "total_swaps", "role", "is_admin",
        "created_at", "updated_at",
    ),
    "user_skills_offered": ("id", "user_id", "skill_id", "proficiency_level", "created_at"),
    "user_skills_wanted": ("id", "user_id", "skill_id", "desired_level", "created_at"),
    "swap_requests": (
        "id", "requester_id", "recipient_id", "offered_skill_id", "wanted_skill_id", "status",
        "message", "created_at", "updated_at",
    ),
    "swap_ratings": ("id", "swap_request_id", "rater_id", "rated_user_id", "rating", "comment", "created_at"),
    "notifications": ("id", "user_id", "type", "title", "message", "is_read", "related_id", "created_at"),
}

# drizzle-kit journal entries (tag, `when` in ms). drizzle stores the sha256 of each migration
# file; there are no files here, so the tag's sha256 stands in for it.
_MIGRATIONS = (
    ("0000_wandering_skillswap", 1704704400000),
    ("0001_add_swap_ratings", 1706792400000),
    ("0002_notifications_and_messages", 1709802000000),
)

_SEED = "skillswap-demo-2024"  # str seeds hash the same in every process
_EPOCH = datetime(2024, 1, 8, 9, 0)  # launch day; every timestamp is an offset from it

_SKILL_CATALOG: dict[str, tuple[str, ...]] = {
    "Programming": (
        "Python", "JavaScript", "TypeScript", "React", "Node.js", "SQL", "Rust", "Go", "Java",
        "C#", "Swift", "Kotlin", "Django", "Git & GitHub", "Docker", "Linux Command Line",
    ),
    "Data & AI": (
        "Machine Learning", "Data Visualization", "Excel & Spreadsheets", "Statistics",
        "Prompt Engineering", "Tableau", "Power BI", "Deep Learning",
    ),
    "Design": (
        "Graphic Design", "UI/UX Design", "Figma", "Adobe Photoshop", "Adobe Illustrator",
        "Typography", "Logo Design", "Web Design", "3D Modeling with Blender", "Motion Graphics",
        "Interior Design", "Calligraphy",
    ),
    "Languages": (
        "Spanish", "French", "German", "Italian", "Portuguese", "Japanese", "Mandarin Chinese",
        "Korean", "Arabic", "Russian", "Hindi", "Dutch", "Sign Language (ASL)",
        "English Conversation",
    ),
    "Music": (
        "Guitar", "Piano", "Violin", "Drums", "Singing", "Ukulele", "Music Theory",
        "Music Production", "DJing", "Bass Guitar", "Saxophone", "Songwriting",
    ),
    "Cooking": (
        "Italian Cooking", "Baking", "Sourdough Bread", "Vegan Cooking", "Indian Cooking",
        "Japanese Cooking", "Pastry", "Cake Decorating", "Meal Prep", "Knife Skills",
        "Fermentation",
    ),
    "Fitness & Wellness": (
        "Yoga", "Pilates", "Running", "Weightlifting", "Meditation", "Rock Climbing", "Swimming",
        "Cycling", "Martial Arts", "Boxing", "Nutrition Coaching", "Salsa Dancing",
    ),
    "Business": (
        "Marketing", "SEO", "Public Speaking", "Project Management", "Copywriting", "Bookkeeping",
        "Personal Finance", "Negotiation", "Social Media Marketing", "Entrepreneurship", "Sales",
        "Résumé Writing",
    ),
    "Crafts & DIY": (
        "Knitting", "Crochet", "Sewing", "Woodworking", "Pottery", "Embroidery", "Jewelry Making",
        "Candle Making", "Leatherworking", "Origami", "Home Repair", "Upholstery",
    ),
    "Photography & Video": (
        "Photography", "Photo Editing (Lightroom)", "Video Editing", "Drone Photography",
        "Portrait Photography", "Filmmaking", "Podcasting", "YouTube Content Creation",
    ),
    "Home & Garden": (
        "Gardening", "Houseplant Care", "Permaculture", "Beekeeping", "Composting",
        "Landscape Design",
    ),
    "Academics": ("Mathematics Tutoring", "Physics", "Chemistry", "Creative Writing"),
}
_SKILL_BLURBS = (
    "From the basics to your first real project.",
    "Hands-on sessions at your pace, online or in person.",
    "Practical tips from years of doing it for fun and for work.",
    "Ideal for beginners who want a friendly start.",
    "Level up with feedback on your own work.",
)
_FIRST_NAMES = (
    "Maya", "Liam", "Sofia", "Noah", "Aisha", "Mateo", "Yuki", "Priya", "Lucas", "Emma", "Omar",
    "Chloé", "Kwame", "Zoë", "Diego", "Hannah", "Ravi", "Ingrid", "José", "Mei", "Fatima",
    "Elijah", "Nora", "Søren", "Amara", "Tomás", "Leila", "Kenji", "Olivia", "Arjun",
)
_LAST_NAMES = (
    "Patel", "García", "Kim", "Müller", "Okafor", "Rossi", "Nguyen", "Johansson", "Silva",
    "O'Brien", "Kowalski", "Tanaka", "Haddad", "Dubois", "Mensah", "Fernández", "Cohen", "Singh",
    "Andersen", "Lopez", "Chen", "Novak", "Moreau", "Ibrahim", "Walker", "Schmidt", "Costa",
    "Yamamoto", "Reyes", "Kaur",
)
_CITIES = (
    ("Berlin, Germany", "Europe/Berlin"), ("London, United Kingdom", "Europe/London"),
    ("New York, NY, USA", "America/New_York"), ("San Francisco, CA, USA", "America/Los_Angeles"),
    ("Toronto, Canada", "America/Toronto"), ("Austin, TX, USA", "America/Chicago"),
    ("Lisbon, Portugal", "Europe/Lisbon"), ("Barcelona, Spain", "Europe/Madrid"),
    ("São Paulo, Brazil", "America/Sao_Paulo"), ("Mexico City, Mexico", "America/Mexico_City"),
    ("Tokyo, Japan", "Asia/Tokyo"), ("Seoul, South Korea", "Asia/Seoul"),
    ("Bengaluru, India", "Asia/Kolkata"), ("Sydney, Australia", "Australia/Sydney"),
    ("Cape Town, South Africa", "Africa/Johannesburg"), ("Nairobi, Kenya", "Africa/Nairobi"),
    ("Amsterdam, Netherlands", "Europe/Amsterdam"), ("Kraków, Poland", "Europe/Warsaw"),
    ("Dublin, Ireland", "Europe/Dublin"), ("Montréal, Canada", "America/Toronto"),
    ("Singapore", "Asia/Singapore"), ("Stockholm, Sweden", "Europe/Stockholm"),
)
_MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
_PROFESSIONS = (
    "Software engineer", "Graphic designer", "Nurse", "High-school teacher", "Chef", "Student",
    "Product manager", "Musician", "Accountant", "Photographer", "Retired architect",
    "Data analyst", "Barista", "Physiotherapist",
)
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_LEVELS = ("beginner", "intermediate", "advanced", "expert")
# Four completed swaps, each rated by both sides, give the seed's eight ratings.
_SWAP_STATUSES = ("completed",) * 4 + ("accepted", "accepted", "pending", "pending", "rejected", "cancelled")
_REQUEST_MESSAGES = (
    "Hi {name}! I'd love to learn {wanted}. Happy to teach you {offered} in return.",
    "Hey {name}, your {wanted} skills look great. Want to swap for some {offered} lessons?",
    "Hello {name} — I can help with {offered} if you can show me the ropes of {wanted}.",
    "{name}, would you be up for a {offered} ↔ {wanted} exchange? Weekends work best for me.",
)
_GOOD_COMMENTS = (
    "Fantastic teacher, very patient!", "Learned a lot in just a few sessions.",
    "Super friendly and well prepared.", "Would swap again anytime 🙌",
)
_MIXED_COMMENTS = ("Good session, but we had to reschedule twice.", "Okay overall; a bit rushed.")
_STAFF = (  # block 0's first users: the known logins
    ("Demo", "User", DEMO_USER_EMAIL, "user"),
    ("SkillSwap", "Admin", DEMO_ADMIN_EMAIL, "admin"),
)


class _Person(NamedTuple):
    id: int
    first_name: str
    last_name: str
    email: str
    role: str
    created_at: datetime


class _Swap(NamedTuple):
    id: int
    requester_id: int
    recipient_id: int
    offered_skill_id: int
    wanted_skill_id: int
    status: str
    message: str
    created_at: datetime
    updated_at: datetime


class _Rating(NamedTuple):
    id: int
    swap_request_id: int
    rater_id: int
    rated_user_id: int
    rating: int
    comment: str | None
    created_at: datetime


def create_demo_database(admin_url: str, dbname: str, *, scale: int = 1) -> dict[str, int]:
    """(Re)create database `dbname` with the demo schema and `scale` times the seed's rows.

    `admin_url` is a postgres:// URL of any database on the server (connected to for DROP and
    CREATE DATABASE). An existing `dbname` is dropped WITH (FORCE). Returns {table: rows loaded},
    public tables by bare name, the journal as "drizzle.__drizzle_migrations".
    """
    if scale < 1:
        raise ValueError(f"scale must be a positive integer, got {scale}")
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    url = make_conninfo(admin_url, dbname=dbname)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_TABLES_SQL)
        counts = _load_rows(url, scale)
        conn.execute(_CONSTRAINTS_SQL)
        setval = "SELECT setval(pg_get_serial_sequence({}, 'id'), coalesce(max(id), 0) + 1, false) FROM {}"
        for table in DEMO_COUNTS:
            conn.execute(sql.SQL(setval).format(sql.Literal(table), sql.Identifier(table)))
        with conn.cursor() as cur:
            cur.executemany(
                'INSERT INTO "drizzle"."__drizzle_migrations" (hash, created_at) VALUES (%s, %s)',
                [(hashlib.sha256(tag.encode()).hexdigest(), when) for tag, when in _MIGRATIONS],
            )
        counts[DRIZZLE_MIGRATIONS] = len(_MIGRATIONS)
        conn.execute("ANALYZE")
    return counts


def _load_rows(url: str, scale: int) -> dict[str, int]:
    counts = dict.fromkeys(DEMO_COUNTS, 0)
    with ExitStack() as stack:
        copies = {}
        for table, columns in _COLUMNS.items():
            conn = stack.enter_context(psycopg.connect(url))
            # Truncating in the COPY's own transaction allows FREEZE: rows land frozen and
            # all-visible, so the first reader (a backup being benchmarked) doesn't pay to set
            # hint bits on every page.
            conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
            statement = sql.SQL("COPY {} ({}) FROM STDIN (FREEZE)").format(
                sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns))
            )
            copies[table] = stack.enter_context(conn.cursor().copy(statement))
        for block in range(scale):
            for table, rows in _block(block).items():
                write_row = copies[table].write_row
                for row in rows:
                    write_row(row)
                counts[table] += len(rows)
    return counts


def _block(block: int) -> dict[str, list[tuple]]:
    """Rows of every non-empty table for one block: the seed's counts, ids offset by block."""
    rng = random.Random(f"{_SEED}/block/{block}")
    n_users, n_skills = DEMO_COUNTS["users"], DEMO_COUNTS["skills"]
    first_user, first_skill = block * n_users + 1, block * n_skills + 1

    skills = [
        (first_skill + i, name if block == 0 else f"{name} ({block + 1})", category, description, created)
        for i, (name, category, description, created) in enumerate(_base_skills())
    ]
    skill_name = {row[0]: row[1] for row in skills}

    people = [_person(rng, block, first_user + i, i) for i in range(n_users)]
    person = {p.id: p for p in people}

    # One draw of distinct (user, skill) cells keeps each pair unique within and across both tables.
    n_offered, n_wanted = DEMO_COUNTS["user_skills_offered"], DEMO_COUNTS["user_skills_wanted"]
    cells = [
        (first_user + cell // n_skills, first_skill + cell % n_skills)
        for cell in rng.sample(range(n_users * n_skills), n_offered + n_wanted)
    ]
    offered_cells, wanted_cells = cells[:n_offered], cells[n_offered:]
    offered = [
        (block * n_offered + k + 1, user_id, skill_id, rng.choices(_LEVELS, (2, 4, 3, 1))[0],
         person[user_id].created_at + timedelta(days=rng.uniform(0, 14)))
        for k, (user_id, skill_id) in enumerate(offered_cells)
    ]
    wanted = [
        (block * n_wanted + k + 1, user_id, skill_id, rng.choice(_LEVELS[1:]),
         person[user_id].created_at + timedelta(days=rng.uniform(0, 14)))
        for k, (user_id, skill_id) in enumerate(wanted_cells)
    ]

    # A request offers one of the requester's skills for one the recipient offers.
    swaps: list[_Swap] = []
    statuses = list(_SWAP_STATUSES)
    rng.shuffle(statuses)
    for status in statuses:
        while True:
            (requester, offered_skill), (recipient, wanted_skill) = rng.sample(offered_cells, 2)
            if requester != recipient and offered_skill != wanted_skill:
                break
        created = max(person[requester].created_at, person[recipient].created_at) + timedelta(
            days=rng.uniform(1, 60)
        )
        message = rng.choice(_REQUEST_MESSAGES).format(
            name=person[recipient].first_name,
            offered=skill_name[offered_skill],
            wanted=skill_name[wanted_skill],
        )
        updated = created if status == "pending" else created + timedelta(days=rng.uniform(0.5, 21))
        swap_id = block * len(_SWAP_STATUSES) + len(swaps) + 1
        swaps.append(_Swap(
            swap_id, requester, recipient, offered_skill, wanted_skill, status, message, created, updated
        ))

    ratings: list[_Rating] = []
    for swap in swaps:
        if swap.status != "completed":
            continue
        parties = (swap.requester_id, swap.recipient_id)
        for rater, rated in (parties, parties[::-1]):
            score = rng.choices((5, 4, 3, 2, 1), (55, 28, 10, 4, 3))[0]
            comments = _GOOD_COMMENTS if score >= 4 else _MIXED_COMMENTS
            comment = rng.choice(comments) if rng.random() < 0.8 else None
            rating_id = block * DEMO_COUNTS["swap_ratings"] + len(ratings) + 1
            created = swap.updated_at + timedelta(hours=rng.uniform(1, 72))
            ratings.append(_Rating(rating_id, swap.id, rater, rated, score, comment, created))

    # Users' rating and total_swaps agree with the swaps and ratings they appear in.
    received: dict[int, list[int]] = defaultdict(list)
    for rating in ratings:
        received[rating.rated_user_id].append(rating.rating)
    completed = Counter(
        user_id
        for swap in swaps
        if swap.status == "completed"
        for user_id in (swap.requester_id, swap.recipient_id)
    )
    first_offer: dict[int, str] = {}
    for user_id, skill_id in offered_cells:
        first_offer.setdefault(user_id, skill_name[skill_id])
    hashes = _password_hashes()
    users = []
    for i, p in enumerate(people):
        # Beyond block 0, users share the regular users' precomputed hashes: bcrypt is slow by design.
        password = hashes[i] if block == 0 else hashes[len(_STAFF) + i % (len(hashes) - len(_STAFF))]
        scores = received.get(p.id)
        rating = (Decimal(sum(scores)) / len(scores)).quantize(Decimal("0.01")) if scores else Decimal("0.00")
        city, timezone = rng.choice(_CITIES)
        bio = None
        if rng.random() < 0.8:
            bio = f"{rng.choice(_PROFESSIONS)} in {city.split(',')[0]}."
            if p.id in first_offer:
                bio += f" Happy to share what I know about {first_offer[p.id]}."
        availability = None
        if rng.random() < 0.9:
            days = sorted(rng.sample(range(7), rng.randint(1, 5)))
            availability = json.dumps({
                "weekdays": [_WEEKDAYS[d] for d in days],
                "evenings": rng.random() < 0.6,
                "weekends": rng.random() < 0.5,
                "timezone": timezone,
            })
        image = f"https://images.skillswap.example/avatars/{p.id}.jpg" if rng.random() < 0.6 else None
        users.append((
            p.id, p.email, password, p.first_name, p.last_name, bio, city if rng.random() < 0.9 else None,
            image, availability, rating, completed[p.id], p.role, p.role == "admin", p.created_at,
            p.created_at + timedelta(days=rng.uniform(0, 90)),
        ))

    pending = next(swap for swap in swaps if swap.status == "pending")
    accepted = next(swap for swap in swaps if swap.status == "accepted")
    first_id = block * DEMO_COUNTS["notifications"] + 1
    notifications = [
        (first_id, pending.recipient_id, "swap_request", "New swap request",
         f"{person[pending.requester_id].first_name} wants to swap {skill_name[pending.offered_skill_id]} "
         f"for your {skill_name[pending.wanted_skill_id]}.",
         False, pending.id, pending.created_at + timedelta(seconds=2)),
        (first_id + 1, accepted.requester_id, "swap_accepted", "Swap request accepted",
         f"{person[accepted.recipient_id].first_name} accepted your swap request.",
         True, accepted.id, accepted.updated_at + timedelta(seconds=2)),
        (first_id + 2, ratings[0].rated_user_id, "new_rating", "You received a new rating",
         f"{person[ratings[0].rater_id].first_name} rated your swap {ratings[0].rating}/5.",
         False, ratings[0].swap_request_id, ratings[0].created_at + timedelta(seconds=2)),
    ]
    return {
        "skills": skills,
        "users": users,
        "user_skills_offered": offered,
        "user_skills_wanted": wanted,
        "swap_requests": swaps,
        "swap_ratings": ratings,
        "notifications": notifications,
    }


def _person(rng: random.Random, block: int, user_id: int, index: int) -> _Person:
    if block == 0 and index < len(_STAFF):
        first, last, email, role = _STAFF[index]
        return _Person(user_id, first, last, email, role, _EPOCH + timedelta(minutes=index))
    created = _EPOCH + timedelta(days=rng.uniform(0, 180), seconds=rng.uniform(0, 86400))
    first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
    email = f"{_ascii(first)}.{_ascii(last)}{user_id}@{rng.choice(_MAIL_DOMAINS)}"
    return _Person(user_id, first, last, email, "user", created)


@functools.cache
def _ascii(name: str) -> str:
    """`Zoë` -> `zoe`, `O'Brien` -> `obrien`: names as people type them in e-mail addresses."""
    return "".join(c for c in unicodedata.normalize("NFKD", name).lower() if c.isascii() and c.isalnum())


@functools.cache
def _base_skills() -> tuple[tuple[str, str, str, datetime], ...]:
    rng = random.Random(f"{_SEED}/skills")
    skills = [(name, category) for category, names in _SKILL_CATALOG.items() for name in names]
    # Seeded before launch, one a minute, in catalog order.
    return tuple(
        (
            name,
            category,
            f"{name} ({category.lower()}). {rng.choice(_SKILL_BLURBS)}",
            _EPOCH - timedelta(minutes=len(skills) - i),
        )
        for i, (name, category) in enumerate(skills)
    )


_STANDARD_TO_BCRYPT_B64 = bytes.maketrans(
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
)


@functools.cache
def _password_hashes() -> tuple[str, ...]:
    """One real bcrypt hash per block-0 user (the demo user's for DEMO_USER_PASSWORD).

    Salts come from the seeded generator, not `bcrypt.gensalt()`, so builds are identical; the
    cache spares ~1.5 s of deliberate bcrypt slowness when a process builds several databases.
    """
    rng = random.Random(f"{_SEED}/passwords")
    hashes = []
    for i in range(DEMO_COUNTS["users"]):
        password = DEMO_USER_PASSWORD if i == 0 else rng.randbytes(12).hex()
        salt = b"$2b$10$" + base64.b64encode(rng.randbytes(16)).translate(_STANDARD_TO_BCRYPT_B64)[:22]
        hashes.append(bcrypt.hashpw(password.encode(), salt).decode())
    return tuple(hashes)
