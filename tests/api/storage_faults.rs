//! An SQLite file that cannot be written, for real: made immutable, or on a
//! disk that is full. Deliveries get 503 while it lasts, nothing answered 200
//! is lost, and the service recovers by itself once the fault is gone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;
use crate::lms::FakeLms;

/// How long a shop keeps redelivering here once the fault is gone.
const RECOVERY: Duration = Duration::from_secs(60);

/// Files with the immutable attribute (`chattr +i`): not even root may write
/// them, through a descriptor opened before or after. Cleared when dropped.
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: &[PathBuf]) -> Immutable {
        for file in files {
            chattr("+i", file);
        }
        Immutable(files.to_vec())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        for file in &self.0 {
            let _ = Command::new("chattr").arg("-i").arg(file).status();
        }
    }
}

fn chattr(flag: &str, file: &Path) {
    let output = Command::new("chattr").arg(flag).arg(file).output();
    let ok = output.as_ref().is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "chattr {flag} {} failed: the read-only fault needs chattr (e2fsprogs), a filesystem \
         with the immutable attribute (ext4, xfs, btrfs, tmpfs) and CAP_LINUX_IMMUTABLE: {output:?}",
        file.display()
    );
}

/// A small tmpfs of its own, unmounted when dropped (lazily: the service
/// still holds its files open).
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: PathBuf, size: &str) -> SmallDisk {
        std::fs::create_dir(&at).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&at)
            .output();
        let ok = output.as_ref().is_ok_and(|o| o.status.success());
        assert!(
            ok,
            "mounting a tmpfs failed: the full-disk fault needs CAP_SYS_ADMIN: {output:?}"
        );
        SmallDisk(at)
    }

    /// Writes a file until the disk has no room left; returns its path.
    fn fill(&self) -> PathBuf {
        let filler = self.0.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0x5a_u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.write_all(&[0x5a]);
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn order(id: u64, padding: usize) -> Value {
    let email = format!("learner{id}@example.org");
    let mut order = shopify_order(id, &[(1, COURSE_A, Some(&email))], None, "paid");
    order["note"] = Value::String("x".repeat(padding));
    order
}

/// Redelivers each order, as the shop would, until it is answered 200.
async fn redeliver_until_taken(app: &TestApp, orders: &[Value]) -> usize {
    let mut tries = 0;
    for order in orders {
        let taken = wait_until(RECOVERY, || {
            tries += 1;
            async move { app.shopify("orders/create", order).await.status() == 200 }
        })
        .await;
        assert!(
            taken,
            "order {} still refused after the fault was removed",
            order["id"]
        );
    }
    tries
}

async fn readyz(app: &TestApp) -> u16 {
    reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_sqlite_file_made_read_only_answers_503_until_writable_and_loses_nothing() {
    let app = spawn_app(Db::Sqlite).await;
    let file = app.dir.path().join("test.sqlite3");
    assert_eq!(
        app.shopify("orders/create", &order(9201, 0)).await.status(),
        200
    );
    app.wait_for_order("9201", SHOP, "enrolled").await;

    // The database and its log; the shared-memory index stays writable: it is
    // mapped into memory, where a write to an immutable file is a SIGBUS.
    let wal = PathBuf::from(format!("{}-wal", file.display()));
    let read_only = Immutable::set(&[file.clone(), wal]);
    let refused: Vec<Value> = (9202..9207).map(|id| order(id, 0)).collect();
    for order in &refused {
        let answer = app.shopify("orders/create", order).await;
        assert_eq!(answer.status(), 503, "{:?}", answer.text().await);
    }
    for order in &refused {
        let id = order["id"].to_string();
        assert!(
            app.store.find_order(&id, Some(SHOP)).await.is_err(),
            "order {id} half-stored"
        );
    }

    drop(read_only);
    let tries = redeliver_until_taken(&app, &refused).await;
    for id in 9201..9207 {
        app.wait_for_order(&id.to_string(), SHOP, "enrolled").await;
    }
    assert_eq!(readyz(&app).await, 200);
    println!("read-only SQLite file: {} deliveries refused with 503, {tries} redeliveries, 6 orders enrolled, 0 lost", refused.len());
}

#[tokio::test]
async fn an_sqlite_file_on_a_full_disk_answers_503_until_there_is_room_and_loses_nothing() {
    let lms = FakeLms::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(Db::Sqlite, &lms, &dir).await;
    let disk = SmallDisk::mount(dir.path().join("disk"), "8m");
    config.database_url = format!("sqlite://{}", disk.0.join("db.sqlite3").display());
    let app = spawn_with_config(config, lms, dir).await;
    assert_eq!(
        app.shopify("orders/create", &order(9301, 0)).await.status(),
        200
    );
    app.wait_for_order("9301", SHOP, "enrolled").await;

    let filler = disk.fill();
    // Room may remain in the pages SQLite already holds: deliveries of 256 KiB
    // are answered 200 (and so must be stored) until it is used up.
    let mut taken = vec![9301];
    let mut refused = Vec::new();
    for id in 9302..9400 {
        let order = order(id, 256 * 1024);
        match app.shopify("orders/create", &order).await.status().as_u16() {
            200 if refused.is_empty() => taken.push(id),
            503 => refused.push(order),
            other => panic!("order {id} on a full disk answered {other}"),
        }
        if refused.len() == 5 {
            break;
        }
    }
    assert_eq!(
        refused.len(),
        5,
        "a full disk took {} deliveries of 256 KiB",
        taken.len()
    );

    std::fs::remove_file(filler).unwrap();
    let tries = redeliver_until_taken(&app, &refused).await;
    taken.extend(refused.iter().map(|o| o["id"].as_u64().unwrap()));
    for id in &taken {
        app.wait_for_order(&id.to_string(), SHOP, "enrolled").await;
    }
    assert_eq!(readyz(&app).await, 200);
    println!(
        "full disk: {} deliveries answered 200 after it filled, 5 refused with 503, {tries} redeliveries, {} orders enrolled, 0 lost",
        taken.len() - 1 - 5,
        taken.len()
    );
}
