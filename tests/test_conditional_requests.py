"""If-Match and If-None-Match with the ETags the service itself hands out."""


def test_a_patch_with_the_current_etag_succeeds_and_a_stale_one_is_refused(client):
    created = client.post("/agents", json={"name": "Versioned"})
    first_etag = created.headers["ETag"]
    url = f"/agents/{created.get_json()['agent']['id']}"

    updated = client.patch(url, json={"name": "Second"}, headers={"If-Match": first_etag})
    assert updated.status_code == 200
    assert updated.headers["ETag"] != first_etag

    stale = client.patch(url, json={"name": "Third"}, headers={"If-Match": first_etag})
    assert stale.status_code == 412
    assert stale.get_json()["code"] == "precondition_failed"
    assert client.get(url).get_json()["agent"]["name"] == "Second"


def test_a_delete_with_the_current_etag_succeeds(client):
    created = client.post("/agents", json={"name": "Doomed"})
    url = f"/agents/{created.get_json()['agent']['id']}"

    assert client.delete(url, headers={"If-Match": '"not-the-etag"'}).status_code == 412
    assert client.delete(url, headers={"If-Match": created.headers["ETag"]}).status_code == 200
    assert client.get(url).status_code == 404


def test_a_get_with_the_current_etag_in_if_none_match_is_not_modified(client):
    created = client.post("/agents", json={"name": "Cached"})
    url = f"/agents/{created.get_json()['agent']['id']}"

    response = client.get(url, headers={"If-None-Match": created.headers["ETag"]})
    assert response.status_code == 304
    assert response.headers["ETag"] == created.headers["ETag"]
