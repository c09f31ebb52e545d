"""Fines found by plate and by the violator's name; a fine's amendment and
cancellation recorded on its row.

* ``fines.plate_key``: the plate in capital letters and digits only
  (``51f-123.45`` and ``51F 12345`` both ``51F12345``);
* ``fines.name_key``: the violator's name in lower case without diacritics,
  ``Đ``/``đ`` read as ``d`` and runs of spaces as one (``Nguyễn  Văn A``:
  ``nguyen van a``), by ``fine_search_fold``, the same table
  ``ledger.fines_search.fold_name`` uses in Python
  (tests/unit/ledger/test_fines_search.py checks they are the same).

PostgreSQL's ``unaccent`` is in the embedded build but is STABLE (it reads a
rules file), so no generated column or index may call it; ``translate`` over
a fixed table is IMMUTABLE and needs no extension.

Both keys are generated, stored columns with the "C" collation, so a btree
serves a prefix (``LIKE 'x%'``) and the order of a page at once; each has an
index alone (a caller of every unit) and one after the issuing unit (an
officer of one unit, the common case).

``due_date`` (the payment deadline, when an amendment sets one),
``cancelled_at``/``cancelled_by``/``cancel_reason`` and ``amended_at``: a
fine cancelled or amended through ``/api/v1/fines/{n}/cancel`` and
``.../amend`` (``ledger.fines_admin``; who and what is in the audit log).

Grants: no new table; the app role's UPDATE on ``fines`` (0011) covers the
new columns (the generated ones cannot be written by anyone).

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

# ``ledger.fines_search.FOLD_FROM``/``FOLD_TO`` as of this revision: every
# Latin letter with marks (U+00C0-U+024F, U+1E00-U+1EFF) whose base is an
# ASCII letter, and Đ/đ; then A-Z to a-z; combining marks (U+0300-U+036F,
# a name typed decomposed) have no counterpart, so translate drops them.
FOLD_FROM = (
    "ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿĀāĂăĄąĆ"
    "ćĈĉĊċČčĎďĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĨĩĪīĬĭĮįİĴĵĶķĹĺĻļĽľŃńŅņŇňŌōŎŏŐő"
    "ŔŕŖŗŘřŚśŜŝŞşŠšŢţŤťŨũŪūŬŭŮůŰűŲųŴŵŶŷŸŹźŻżŽžƠơƯưǍǎǏǐǑǒǓǔǕǖǗǘǙǚǛ"
    "ǜǞǟǠǡǦǧǨǩǪǫǬǭǰǴǵǸǹǺǻȀȁȂȃȄȅȆȇȈȉȊȋȌȍȎȏȐȑȒȓȔȕȖȗȘșȚțȞȟȦȧȨȩȪȫȬȭȮȯ"
    "ȰȱȲȳḀḁḂḃḄḅḆḇḈḉḊḋḌḍḎḏḐḑḒḓḔḕḖḗḘḙḚḛḜḝḞḟḠḡḢḣḤḥḦḧḨḩḪḫḬḭḮḯḰḱḲḳḴḵḶḷ"
    "ḸḹḺḻḼḽḾḿṀṁṂṃṄṅṆṇṈṉṊṋṌṍṎṏṐṑṒṓṔṕṖṗṘṙṚṛṜṝṞṟṠṡṢṣṤṥṦṧṨṩṪṫṬṭṮṯṰṱṲṳ"
    "ṴṵṶṷṸṹṺṻṼṽṾṿẀẁẂẃẄẅẆẇẈẉẊẋẌẍẎẏẐẑẒẓẔẕẖẗẘẙẠạẢảẤấẦầẨẩẪẫẬậẮắẰằẲẳẴẵ"
    "ẶặẸẹẺẻẼẽẾếỀềỂểỄễỆệỈỉỊịỌọỎỏỐốỒồỔổỖỗỘộỚớỜờỞởỠỡỢợỤụỦủỨứỪừỬửỮữỰự"
    "ỲỳỴỵỶỷỸỹĐđ"
)
FOLD_TO = (
    "aaaaaaceeeeiiiinooooouuuuyaaaaaaceeeeiiiinooooouuuuyyaaaaaac"
    "cccccccddeeeeeeeeeegggggggghhiiiiiiiiijjkkllllllnnnnnnoooooo"
    "rrrrrrssssssssttttuuuuuuuuuuuuwwyyyzzzzzzoouuaaiioouuuuuuuuu"
    "uaaaaggkkoooojggnnaaaaaaeeeeiiiioooorrrruuuusstthhaaeeoooooo"
    "ooyyaabbbbbbccddddddddddeeeeeeeeeeffgghhhhhhhhhhiiiikkkkkkll"
    "llllllmmmmmmnnnnnnnnoooooooopppprrrrrrrrssssssssssttttttttuu"
    "uuuuuuuuvvvvwwwwwwwwwwxxxxyyzzzzzzhtwyaaaaaaaaaaaaaaaaaaaaaa"
    "aaeeeeeeeeeeeeeeeeiiiioooooooooooooooooooooooouuuuuuuuuuuuuu"
    "yyyyyyyydd"
)
_COMBINING = "".join(chr(c) for c in range(0x0300, 0x0370))
_FROM = FOLD_FROM + "ABCDEFGHIJKLMNOPQRSTUVWXYZ" + _COMBINING
_TO = FOLD_TO + "abcdefghijklmnopqrstuvwxyz"

UPGRADE = (
    r"""
CREATE FUNCTION fine_search_fold(value text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT btrim(regexp_replace(translate(value, '"""
    + _FROM
    + "', '"
    + _TO
    + r"""'), ' +', ' ', 'g'), ' ') $$;

ALTER TABLE fines
    ADD COLUMN plate_key text COLLATE "C"
        GENERATED ALWAYS AS (upper(regexp_replace(plate, '[^0-9A-Za-z]+', '', 'g'))) STORED,
    ADD COLUMN name_key text COLLATE "C"
        GENERATED ALWAYS AS (fine_search_fold(violator_name)) STORED,
    ADD COLUMN due_date date,
    ADD COLUMN amended_at timestamptz,
    ADD COLUMN cancelled_at timestamptz,
    ADD COLUMN cancelled_by text,
    ADD COLUMN cancel_reason text,
    ADD CONSTRAINT fines_cancel_whole CHECK (
        (cancelled_at IS NULL) = (cancelled_by IS NULL)
        AND (cancelled_at IS NULL) = (cancel_reason IS NULL));

CREATE INDEX fines_plate_key ON fines (plate_key, id);
CREATE INDEX fines_name_key ON fines (name_key, id);
CREATE INDEX fines_unit_plate_key ON fines (issuing_unit, plate_key, id);
CREATE INDEX fines_unit_name_key ON fines (issuing_unit, name_key, id);
"""
)

DOWNGRADE = r"""
DROP INDEX fines_unit_name_key;
DROP INDEX fines_unit_plate_key;
DROP INDEX fines_name_key;
DROP INDEX fines_plate_key;
ALTER TABLE fines
    DROP CONSTRAINT fines_cancel_whole,
    DROP COLUMN cancel_reason,
    DROP COLUMN cancelled_by,
    DROP COLUMN cancelled_at,
    DROP COLUMN amended_at,
    DROP COLUMN due_date,
    DROP COLUMN name_key,
    DROP COLUMN plate_key;
DROP FUNCTION fine_search_fold(text);
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
