package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/template"
	"time"

	_ "modernc.org/sqlite" // the accounting database Kamailio writes

	"github.com/convene/convene/internal/sip/sipp"
)

// Kamailio as `convene bench sip` runs it beside Convene: the same
// scenario and features, configured the way its sample configuration
// does them.

// kamailioModules is where Debian's kamailio keeps its modules.
const kamailioModules = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

// kamailioBin finds kamailio and its database module: db_sqlite, or
// db_postgres when postgres.
func kamailioBin(postgres bool) (string, error) {
	p, err := exec.LookPath("kamailio")
	if err != nil {
		return "", errors.New("kamailio is not installed: install Debian's kamailio and kamailio-sqlite-modules (scripts/install-deps.sh)")
	}
	mod, pkg := "db_sqlite.so", "kamailio-sqlite-modules"
	if postgres {
		mod, pkg = "db_postgres.so", "kamailio-postgres-modules"
	}
	if _, err := os.Stat(filepath.Join(kamailioModules, mod)); err != nil {
		return "", fmt.Errorf("kamailio has no %s: install Debian's %s", mod, pkg)
	}
	return p, nil
}

// kamailioSchema is what auth_db and acc read and write (Kamailio's own
// db_sqlite schemas: version, subscriber, acc).
const kamailioSchema = `
CREATE TABLE version (id INTEGER PRIMARY KEY NOT NULL, table_name VARCHAR(32) NOT NULL,
  table_version INTEGER DEFAULT 0 NOT NULL, CONSTRAINT version_table_name_idx UNIQUE (table_name));
INSERT INTO version (table_name, table_version) VALUES ('version', '1');
CREATE TABLE subscriber (id INTEGER PRIMARY KEY NOT NULL, username VARCHAR(64) DEFAULT '' NOT NULL,
  domain VARCHAR(64) DEFAULT '' NOT NULL, password VARCHAR(64) DEFAULT '' NOT NULL,
  ha1 VARCHAR(128) DEFAULT '' NOT NULL, ha1b VARCHAR(128) DEFAULT '' NOT NULL,
  CONSTRAINT subscriber_account_idx UNIQUE (username, domain));
CREATE INDEX subscriber_username_idx ON subscriber (username);
INSERT INTO version (table_name, table_version) VALUES ('subscriber', '7');
CREATE TABLE acc (id INTEGER PRIMARY KEY NOT NULL, method VARCHAR(16) DEFAULT '' NOT NULL,
  from_tag VARCHAR(128) DEFAULT '' NOT NULL, to_tag VARCHAR(128) DEFAULT '' NOT NULL,
  callid VARCHAR(255) DEFAULT '' NOT NULL, sip_code VARCHAR(3) DEFAULT '' NOT NULL,
  sip_reason VARCHAR(128) DEFAULT '' NOT NULL, time TIMESTAMP WITHOUT TIME ZONE NOT NULL);
CREATE INDEX acc_callid_idx ON acc (callid);
INSERT INTO version (table_name, table_version) VALUES ('acc', '5');
`

// kamailioConfig: digest auth against the subscriber table (401 for
// REGISTER, 407 for INVITE, qop=auth with nonce counts checked), a
// registrar in memory, record-route and loose routing, and accounting of
// each call's INVITE and BYE to SQL.
var kamailioConfig = template.Must(template.New("kamailio.cfg").Parse(`#!KAMAILIO
debug=0
log_stderror=yes
children={{.Children}}
disable_tcp=yes
auto_aliases=no
listen=udp:{{.Addr}}
alias="{{.Addr}}"
mpath="{{.Modules}}"
loadmodule "{{.DBModule}}"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "sanity.so"
loadmodule "auth.so"
loadmodule "auth_db.so"
loadmodule "acc.so"
loadmodule "kex.so"
loadmodule "corex.so"
{{if .SQLite}}modparam("db_sqlite", "db_set_journal_mode", "{{.DB}}=WAL;")
{{end}}modparam("usrloc", "db_mode", 0)
modparam("auth", "nonce_count", 1)
modparam("auth", "qop", "auth")
modparam("auth_db", "db_url", "{{.DBURL}}")
modparam("auth_db", "calculate_ha1", 0)
modparam("auth_db", "password_column", "ha1")
modparam("auth_db", "load_credentials", "")
modparam("acc", "db_url", "{{.DBURL}}")
modparam("acc", "db_flag", 1)
modparam("rr", "append_fromtag", 1)
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (!sanity_check("1511", "7")) { exit; }
	if (has_totag()) {
		if (loose_route()) {
			if (is_method("BYE")) { setflag(1); }
			t_relay();
			exit;
		}
		if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
		sl_send_reply("404", "Not Here");
		exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
	t_check_trans();
	if (is_method("REGISTER")) {
		if (!auth_check("$fd", "subscriber", "1")) { auth_challenge("$fd", "1"); exit; }
		if (!save("location")) { sl_reply_error(); }
		exit;
	}
	if (is_method("INVITE")) {
		if (!auth_check("$fd", "subscriber", "1")) { auth_challenge("$fd", "1"); exit; }
		consume_credentials();
		record_route();
		setflag(1);
		if (!lookup("location")) { sl_send_reply("404", "Not Found"); exit; }
		t_relay();
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
`))

// kamailioTarget is a Kamailio process with its database: a SQLite file,
// or a PostgreSQL database of its own (pg).
type kamailioTarget struct {
	dir     string
	sipAddr string
	db      *sql.DB
	dbPath  string
	pg      *pgDatabase
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	log     bytes.Buffer
}

func (k *kamailioTarget) Write(b []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.log.Len() < 1<<20 {
		k.log.Write(b)
	}
	return len(b), nil
}

func (b *SIP) startKamailio(ctx context.Context, dir string) (sipTarget, error) {
	bin, err := kamailioBin(b.Postgres != "")
	if err != nil {
		return nil, err
	}
	port, err := sipp.FreePort()
	if err != nil {
		return nil, err
	}
	k := &kamailioTarget{dir: dir, sipAddr: "127.0.0.1:" + strconv.Itoa(port), dbPath: filepath.Join(dir, "kamailio.db"), done: make(chan struct{})}
	params := map[string]any{"Children": b.kamailioChildren(), "Addr": k.sipAddr, "Modules": kamailioModules,
		"SQLite": true, "DBModule": "db_sqlite.so", "DB": k.dbPath, "DBURL": "sqlite://" + k.dbPath}
	driver, dsn, schema := "sqlite", k.dbPath+"?_busy_timeout=10000", kamailioSchema
	if b.Postgres != "" {
		if k.pg, err = newPGDatabase(ctx, b.Postgres, "kamailio"); err != nil {
			return nil, err
		}
		params["SQLite"], params["DBModule"], params["DBURL"] = false, "db_postgres.so", k.pg.KamailioURL()
		driver, dsn, schema = "pgx", k.pg.URL(), kamailioSchemaPG
	}
	if k.db, err = sql.Open(driver, dsn); err != nil {
		k.stop()
		return nil, err
	}
	if _, err := k.db.ExecContext(ctx, schema); err != nil {
		k.stop()
		return nil, fmt.Errorf("bench sip: Kamailio's database: %w", err)
	}
	var cfg bytes.Buffer
	if err := kamailioConfig.Execute(&cfg, params); err != nil {
		k.stop()
		return nil, err
	}
	cfgPath := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cfgPath, cfg.Bytes(), 0o600); err != nil {
		k.stop()
		return nil, err
	}
	k.cmd = exec.Command(bin, "-f", cfgPath, "-DD", "-E", "-m", "256", "-M", "16", "-P", filepath.Join(dir, "kamailio.pid"), "-Y", dir)
	k.cmd.Stdout, k.cmd.Stderr = k, k
	k.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := k.cmd.Start(); err != nil {
		k.cmd = nil
		k.stop()
		return nil, err
	}
	go func() { _ = k.cmd.Wait(); close(k.done) }()
	if err := k.waitServing(ctx); err != nil {
		k.stop()
		return nil, err
	}
	return k, nil
}

// waitServing sends OPTIONS until Kamailio answers.
func (k *kamailioTarget) waitServing(ctx context.Context) error {
	c, err := net.Dial("udp", k.sipAddr)
	if err != nil {
		return err
	}
	defer c.Close()
	local := c.LocalAddr().String()
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		select {
		case <-k.done:
			return fmt.Errorf("bench sip: kamailio exited:\n%s", k.logs())
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		msg := fmt.Sprintf("OPTIONS sip:%s SIP/2.0\r\nVia: SIP/2.0/UDP %s;branch=z9hG4bK-probe-%d\r\nFrom: <sip:probe@127.0.0.1>;tag=p%d\r\n"+
			"To: <sip:%s>\r\nCall-ID: probe-%d@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			k.sipAddr, local, i, i, k.sipAddr, i)
		_, _ = c.Write([]byte(msg))
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		buf := make([]byte, 2048)
		if n, err := c.Read(buf); err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 ") {
			return nil
		}
	}
	return fmt.Errorf("bench sip: kamailio does not answer on %s:\n%s", k.sipAddr, k.logs())
}

func (k *kamailioTarget) logs() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	s := k.log.String()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

func (k *kamailioTarget) name() string { return "kamailio" }
func (k *kamailioTarget) addr() string { return k.sipAddr }
func (k *kamailioTarget) recordsNote() string {
	if k.pg != nil {
		return "acc rows of each call's INVITE and BYE, PostgreSQL through db_postgres"
	}
	return "acc rows of each call's INVITE and BYE, SQLite through db_sqlite"
}

// subscribers adds users with their HA1 for the realm Kamailio
// challenges with: the From domain, which sipp sets to the target's
// address.
func (k *kamailioTarget) subscribers(ctx context.Context, users []string) error {
	host, _, _ := net.SplitHostPort(k.sipAddr)
	for _, u := range users {
		sum := md5.Sum([]byte(u + ":" + host + ":pw-" + u))
		if _, err := k.db.ExecContext(ctx, `INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES ($1, $2, '', $3, '')`,
			u, host, hex.EncodeToString(sum[:])); err != nil {
			return fmt.Errorf("bench sip: Kamailio's subscribers: %w", err)
		}
	}
	return nil
}

// records are the calls with both their INVITE (200) and BYE accounted
// (the database is the round's own).
func (k *kamailioTarget) records(ctx context.Context, _ time.Time) (map[string]bool, error) {
	rows, err := k.db.QueryContext(ctx, `SELECT callid FROM acc GROUP BY callid
		HAVING SUM(CASE WHEN method = 'INVITE' AND sip_code = '200' THEN 1 ELSE 0 END) > 0
		AND SUM(CASE WHEN method = 'BYE' THEN 1 ELSE 0 END) > 0`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	have := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	return have, rows.Err()
}

func (k *kamailioTarget) stop() {
	if k.cmd != nil && k.cmd.Process != nil {
		_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-k.cmd.Process.Pid, syscall.SIGKILL)
			<-k.done
		}
	}
	if k.db != nil {
		k.db.Close()
	}
	if k.pg != nil {
		k.pg.drop()
	}
}
