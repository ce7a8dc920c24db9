use super::*;

fn records(texts: &[&str]) -> Vec<Vec<u8>> {
    texts.iter().map(|t| t.as_bytes().to_vec()).collect()
}

fn texts(read: &[(Key, Vec<u8>)]) -> Vec<String> {
    read.iter()
        .map(|(_, bytes)| String::from_utf8(bytes.clone()).unwrap())
        .collect()
}

#[tokio::test]
async fn records_come_back_oldest_first_and_go_once_removed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(records(&["a", "b"])).await.unwrap();
    spool.append(records(&["c"])).await.unwrap();
    let all = spool.oldest(None, 10).await.unwrap();
    assert_eq!(texts(&all), ["a", "b", "c"]);
    assert_eq!(
        texts(&spool.oldest(Some(all[0].0), 1).await.unwrap()),
        ["b"]
    );
    assert_eq!(spool.stats().events, 3);
    assert_eq!(spool.stats().bytes, 3);
    assert!(spool.stats().oldest_spooled_at_ms.is_some());

    spool.remove(vec![all[0].0, all[1].0]).await.unwrap();
    assert_eq!(texts(&spool.oldest(None, 10).await.unwrap()), ["c"]);
    assert_eq!(spool.stats().events, 1);
    spool.remove(vec![all[2].0]).await.unwrap();
    assert_eq!(spool.stats(), SpoolStats::default());
    spool.close().await;
}

#[tokio::test]
async fn a_reopened_spool_has_what_was_committed_and_keeps_counting() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(records(&["first"])).await.unwrap();
    spool.close().await;

    assert_eq!(Spool::status(dir.path()).unwrap().events, 1);
    let spool = Spool::open(dir.path(), 1 << 20).unwrap();
    spool.append(records(&["second"])).await.unwrap();
    assert_eq!(
        texts(&spool.oldest(None, 10).await.unwrap()),
        ["first", "second"],
        "new keys come after the old ones"
    );
    spool.close().await;
}

#[tokio::test]
async fn a_full_spool_refuses_the_whole_append_until_room_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let spool = Spool::open(dir.path(), 10).unwrap();
    spool.append(records(&["12345678"])).await.unwrap();
    let error = spool.append(records(&["ab", "cd"])).await.unwrap_err();
    assert!(
        matches!(error, SpoolError::Full { max_bytes: 10 }),
        "{error}"
    );
    assert!(spool.writable().is_err(), "full once an append did not fit");
    assert_eq!(
        spool.stats().events,
        1,
        "nothing of the refused append is kept"
    );

    let first = spool.oldest(None, 1).await.unwrap()[0].0;
    spool.remove(vec![first]).await.unwrap();
    assert!(spool.writable().is_ok());
    spool.append(records(&["ab", "cd"])).await.unwrap();
    spool.close().await;
}

#[test]
fn the_status_of_a_missing_spool_is_empty() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        Spool::status(&dir.path().join("nothing")).unwrap(),
        SpoolStats::default()
    );
}
